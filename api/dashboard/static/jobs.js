// The jobs view: one group's children (or the roots), a keyset page at a time, with
// breadcrumbs, filters in the URL, multi-select and the actions on the selection.
import { useEffect, useRef, useState } from "preact/hooks";
import { call, get } from "./api.js";
import { Submit } from "./submit.js";
import {
  duration,
  html,
  isGroup,
  LastOutput,
  lastRun,
  link,
  navigate,
  onLink,
  Progress,
  State,
  STATES,
  useNow,
  useThrottled,
  when,
} from "./util.js";

const PAGE = 100;
// the most a page of jobs is read again per change message: once a second
const REREAD_MS = 1000;

// the columns a page sorts by (the server's `sort`), as their headers say
const SORTS = { id: "id", title: "title", state: "state", prio: "priority", start: "start", duration: "duration" };

// quick filters: what a wrangler asks most, one click (and one shareable link) away
const QUICK = {
  mine: (me) => ({ user: me.name }),
  running: () => ({ state: "WORKING" }),
  failed: () => ({ state: "ERROR" }),
};

// `open`: the last crumb (the job `id` itself) is a link too, as from a job's own view
export function Breadcrumbs({ id, tick, open = false }) {
  const [path, setPath] = useState([]);
  const [self, setSelf] = useState(null);
  useEffect(() => {
    if (!id) {
      setPath([]);
      setSelf(null);
      return;
    }
    let live = true;
    Promise.all([get(`/api/v2/jobs/${id}/path`), get(`/api/jobs/${id}`)])
      .then(([ancestors, job]) => {
        if (!live) return;
        setPath(ancestors);
        setSelf(job);
      })
      .catch(() => live && setPath([]));
    return () => {
      live = false;
    };
  }, [id, tick]);
  return html`<nav class="crumbs" aria-label="breadcrumbs">
    <a href="/" onClick=${(e) => onLink(e, {})}>All jobs</a>
    ${path.map(
      (a) =>
        html`<span class="sep">›</span
          ><a href=${link({ parent: a.id })} onClick=${(e) => onLink(e, { parent: a.id })}
            >${a.title || `#${a.id}`}</a
          >`,
    )}
    ${self &&
    (open
      ? html`<span class="sep">›</span
          ><a href=${link({ parent: self.id })} onClick=${(e) => onLink(e, { parent: self.id })}
            >${self.title || `#${self.id}`}</a
          >`
      : html`<span class="sep">›</span><span class="here">${self.title || `#${self.id}`}</span>`)}
  </nav>`;
}

function Filters({ where, me, searchRef }) {
  const [text, setText] = useState(where.title || "");
  useEffect(() => setText(where.title || ""), [where.title]);
  const go = (change) => navigate({ ...where, after: undefined, ...change });
  const quick = where.quick || "";
  return html`<form
    class="filters"
    onSubmit=${(e) => {
      e.preventDefault();
      go({ title: text, quick: undefined });
    }}
  >
    <input
      ref=${searchRef}
      type="search"
      name="title"
      placeholder="Search titles ( / )"
      value=${text}
      onInput=${(e) => setText(e.currentTarget.value)}
      onKeyDown=${(e) => {
        // the form has several fields and no submit button: Enter submits nothing itself
        if (e.key === "Enter") {
          e.preventDefault();
          go({ title: e.currentTarget.value, quick: undefined });
        }
      }}
    />
    <select
      name="state"
      aria-label="state"
      value=${where.state || ""}
      onChange=${(e) => go({ state: e.currentTarget.value, quick: undefined })}
    >
      <option value="">any state</option>
      ${STATES.map((s) => html`<option value=${s}>${s.toLowerCase()}</option>`)}
    </select>
    <input
      name="user"
      placeholder="user"
      size="10"
      value=${where.user || ""}
      onChange=${(e) => go({ user: e.currentTarget.value, quick: undefined })}
    />
    <span class="quick">
      ${Object.keys(QUICK)
        .filter((name) => name !== "mine" || me.name)
        .map(
          (name) =>
            html`<button
              type="button"
              class=${quick === name ? "on" : ""}
              data-quick=${name}
              onClick=${() =>
                quick === name
                  ? go({ quick: undefined, state: undefined, user: undefined })
                  : go({ state: undefined, user: undefined, ...QUICK[name](me), quick: name })}
            >
              ${name}
            </button>`,
        )}
    </span>
    ${(where.state || where.user || where.title) &&
    html`<button type="button" onClick=${() => navigate({ parent: where.parent, sort: where.sort })}
      >clear</button>`}
  </form>`;
}

// What each action sends, and what its confirmation says it touches.
const ACTIONS = [
  { key: "pause", label: "Pause", path: "/api/pausejobs", what: "pause", sub: true, hot: "p" },
  { key: "start", label: "Start", path: "/api/startjobs", what: "start", sub: true, hot: "s" },
  { key: "reset", label: "Reset", path: "/api/resetjobs", what: "reset (run again from scratch)", sub: true },
  { key: "reseterrors", label: "Reset errors", path: "/api/reseterrorjobs", what: "reset the failed frames of", sub: true },
  { key: "priority", label: "Priority…", what: "set the priority of" },
  { key: "move", label: "Move…", what: "move", sub: true },
  { key: "delete", label: "Delete", what: "DELETE", sub: true, danger: true },
];

function describe(jobs) {
  const shown = jobs
    .slice(0, 8)
    .map((j) => `#${j.id} ${j.title}`)
    .join("\n");
  const more = jobs.length > 8 ? `\n… and ${jobs.length - 8} more` : "";
  return `${shown}${more}`;
}

export async function act(action, jobs) {
  const ids = jobs.map((j) => j.id);
  const groups = jobs.filter(isGroup).length;
  const subtree = action.sub && groups ? ` (and everything under the ${groups} group(s))` : "";
  if (action.key === "priority") {
    const answer = prompt(
      `New priority for ${jobs.length} job(s)${subtree}:\n${describe(jobs)}`,
      String(jobs[0].priority),
    );
    if (answer === null) return false;
    const priority = Number.parseInt(answer, 10);
    if (!Number.isFinite(priority)) throw new Error(`a priority is a whole number, not ${answer}`);
    await call("POST", "/api/jobs", Object.fromEntries(ids.map((id) => [id, { priority }])));
    return true;
  }
  if (action.key === "move") return move(jobs, subtree);
  if (!confirm(`${action.what} ${jobs.length} job(s)${subtree}?\n${describe(jobs)}`)) return false;
  if (action.key === "delete") await call("DELETE", "/api/jobs", ids);
  else await call("POST", action.path, ids);
  return true;
}

// under another group (or to the top): which one is asked, then the move is confirmed
// naming the group, as the server will see it
async function move(jobs, subtree) {
  const answer = prompt(
    `Move ${jobs.length} job(s)${subtree} under which group? Its id, or 0 for the top:\n${describe(jobs)}`,
    "",
  );
  if (answer === null || answer.trim() === "") return false;
  const parent = Number(answer.trim());
  if (!Number.isSafeInteger(parent) || parent < 0) throw new Error(`a group is a job id, not ${answer}`);
  let where = "the top level";
  if (parent) {
    const group = await get(`/api/jobs/${parent}`);
    if (!isGroup(group)) throw new Error(`#${parent} ${group.title} runs a command: it is no group`);
    where = `group #${group.id} ${group.title}`;
  }
  if (!confirm(`Move ${jobs.length} job(s)${subtree} under ${where}?\n${describe(jobs)}`)) return false;
  await call("POST", "/api/jobs", Object.fromEntries(jobs.map((j) => [j.id, { parent }])));
  return true;
}

export function allowed(me, job) {
  if (me.anonymous) return false;
  if (me.role === "admin") return true;
  return me.role === "user" && (me.users_change_any || job.user === me.name);
}

// a column header that sorts the page by it: once ascending, again descending
function SortHeader({ where, label }) {
  const column = SORTS[label];
  const sort = where.sort || "id";
  const on = sort.replace(/^-/, "") === column;
  const descending = sort.startsWith("-");
  const next = on && !descending ? `-${column}` : column;
  const params = { ...where, after: undefined, sort: next === "id" ? undefined : next };
  return html`<th data-sort=${column} aria-sort=${on ? (descending ? "descending" : "ascending") : "none"}>
    <a href=${link(params)} onClick=${(e) => onLink(e, params)}
      title=${`sort by ${label}`}>${label}${on ? (descending ? " ▼" : " ▲") : ""}</a>
  </th>`;
}

export function JobsView({ where, me, tick, searchRef, keys, setError }) {
  const parent = Number(where.parent || 0);
  const after = Number(where.after || 0);
  const reread = useThrottled(tick.jobs, REREAD_MS);
  const now = useNow(5000);
  const [page, setPage] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const [cursor, setCursor] = useState(0);
  const [submitting, setSubmitting] = useState(false);
  // the `after` of each page before this one, for "previous"
  const back = useRef([]);

  // a link written by hand (`?quick=failed`) filters as the button does; what the URL
  // says itself wins
  const quick = QUICK[where.quick] && me ? QUICK[where.quick](me) : {};
  const filter = {
    parent,
    after,
    limit: PAGE,
    state: where.state ?? quick.state,
    user: where.user ?? quick.user,
    title: where.title,
    sort: where.sort,
  };
  const key = JSON.stringify(filter);
  useEffect(() => {
    let live = true;
    get("/api/v2/jobs", filter)
      .then((answer) => live && setPage(answer))
      .catch((err) => live && setError(err));
    return () => {
      live = false;
    };
  }, [key, reread]);
  useEffect(() => {
    setSelected(new Set());
    setCursor(0);
    back.current = [];
  }, [parent, where.state, where.user, where.title, where.sort]);

  const jobs = page ? page.jobs : [];
  const chosen = jobs.filter((j) => selected.has(j.id));
  const targets = chosen.length ? chosen : jobs[cursor] ? [jobs[cursor]] : [];
  const mayChange = targets.length > 0 && targets.every((j) => allowed(me, j));

  const run = async (action, on = targets) => {
    if (!on.length) return;
    try {
      if (await act(action, on)) setSelected(new Set());
    } catch (err) {
      setError(err);
    }
  };

  // the keys of this view (app.js dispatches the ones no input took)
  keys.current = (k) => {
    if (k === "j") setCursor((c) => Math.min(c + 1, jobs.length - 1));
    else if (k === "k") setCursor((c) => Math.max(c - 1, 0));
    else if (k === "x" && jobs[cursor]) toggle(jobs[cursor].id);
    else if (k === "Enter" && jobs[cursor]) open(jobs[cursor]);
    else if ((k === "p" || k === "s") && mayChange)
      run(ACTIONS.find((a) => a.hot === k));
    else if (k === "n" && page && page.next) next();
    else return false;
    return true;
  };

  const toggle = (id) =>
    setSelected((s) => {
      const copy = new Set(s);
      if (copy.has(id)) copy.delete(id);
      else copy.add(id);
      return copy;
    });
  const open = (job) =>
    navigate(isGroup(job) ? { parent: job.id } : { view: "job", id: job.id });
  const next = () => {
    back.current.push(after);
    navigate({ ...where, after: page.next });
  };
  const previous = () => navigate({ ...where, after: back.current.pop() || undefined });

  return html`<section class="jobs">
    <${Breadcrumbs} id=${parent} tick=${tick.jobs} />
    <div class="toolbar">
      <${Filters} where=${where} me=${me} searchRef=${searchRef} />
      ${me.role !== "worker" && !me.anonymous &&
      html`<button class="primary" onClick=${() => setSubmitting(!submitting)}>
        ${submitting ? "Close" : "Submit…"}
      </button>`}
    </div>
    ${submitting && html`<${Submit} parent=${parent} me=${me} setError=${setError}
      done=${() => setSubmitting(false)} />`}
    <div class="actions" role="toolbar" aria-label="actions">
      <span class="muted">${chosen.length ? `${chosen.length} selected` : "on the highlighted job:"}</span>
      ${ACTIONS.map(
        (a) => html`<button
          class=${a.danger ? "danger" : ""}
          data-action=${a.key}
          disabled=${!mayChange}
          title=${mayChange ? "" : "you may not change these jobs"}
          onClick=${() => run(a)}
        >
          ${a.label}
        </button>`,
      )}
    </div>
    <table class="grid">
      <thead>
        <tr>
          <th>
            <input
              type="checkbox"
              aria-label="select the page"
              checked=${jobs.length > 0 && chosen.length === jobs.length}
              onChange=${(e) =>
                setSelected(new Set(e.currentTarget.checked ? jobs.map((j) => j.id) : []))}
            />
          </th>
          <${SortHeader} where=${where} label="id" />
          <${SortHeader} where=${where} label="title" />
          <${SortHeader} where=${where} label="state" />
          <th>progress</th>
          <${SortHeader} where=${where} label="prio" />
          <th>user</th><th>worker</th>
          <${SortHeader} where=${where} label="start" />
          <${SortHeader} where=${where} label="duration" />
          <th>runs</th><th title="time since the last output of a running job">output</th>
        </tr>
      </thead>
      <tbody>
        ${jobs.map(
          (j, i) => html`<tr
            key=${j.id}
            data-id=${j.id}
            class=${`${i === cursor ? "cursor" : ""} ${selected.has(j.id) ? "selected" : ""}`}
            onClick=${() => setCursor(i)}
          >
            <td>
              <input
                type="checkbox"
                aria-label=${`select job ${j.id}`}
                checked=${selected.has(j.id)}
                onChange=${() => toggle(j.id)}
              />
            </td>
            <td class="num">${j.id}</td>
            <td class="title">
              <a
                href=${link(isGroup(j) ? { parent: j.id } : { view: "job", id: j.id })}
                onClick=${(e) => onLink(e, isGroup(j) ? { parent: j.id } : { view: "job", id: j.id })}
                >${isGroup(j) ? "▸ " : ""}${j.title || "(untitled)"}</a
              >
              ${isGroup(j) &&
              html` <a class="muted small" href=${link({ view: "job", id: j.id })}
                onClick=${(e) => onLink(e, { view: "job", id: j.id })}>details</a>`}
            </td>
            <td><${State} state=${j.state} why=${lastRun(j)} /></td>
            <td class="progress"><${Progress} job=${j} /></td>
            <td class="num">${j.priority}</td>
            <td>${j.user}</td>
            <td>${j.worker}</td>
            <td>${when(j.start_time)}</td>
            <td class="num">${j.start_time ? duration(j.duration) : ""}</td>
            <td class="num" title="runs done / retries allowed">${j.run_done}/${j.retry}</td>
            <td class="output"><${LastOutput} at=${page.last_output[j.id]} now=${now}
              running=${j.state === "WORKING" && !isGroup(j)} short=${true} /></td>
          </tr>`,
        )}
      </tbody>
    </table>
    ${page && !jobs.length && html`<p class="empty">No jobs here${where.state || where.user || where.title ? " match the filters" : ""}.</p>`}
    <div class="pager">
      <button disabled=${!after} onClick=${() => { back.current = []; navigate({ ...where, after: undefined }); }}>First</button>
      <button disabled=${!after} onClick=${previous}>Previous</button>
      <span class="muted">${jobs.length ? `#${jobs[0].id} – #${jobs[jobs.length - 1].id}` : ""}</span>
      <button data-page="next" disabled=${!(page && page.next)} onClick=${next}>Next</button>
    </div>
  </section>`;
}
