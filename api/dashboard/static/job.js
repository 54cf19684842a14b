// One job: its fields, what it depends on and what depends on it, its runs, and its log
// (a window of it: the tail, followed live while the job runs, earlier parts on demand).
import { useEffect, useRef, useState } from "preact/hooks";
import { get } from "./api.js";
import { act, allowed, Breadcrumbs } from "./jobs.js";
import {
  bytes,
  duration,
  html,
  isGroup,
  LastOutput,
  lastRun,
  link,
  onLink,
  Progress,
  State,
  useNow,
  when,
} from "./util.js";

// bytes per log read, and the most the page keeps of a log at once
const WINDOW = 64 * 1024;
const KEPT = 2 * 1024 * 1024;

const JobLink = ({ id }) =>
  html`<a href=${link({ view: "job", id })} onClick=${(e) => onLink(e, { view: "job", id })}
    >#${id}</a
  >`;

function Log({ id, tick, running, now, lastOutput, setLastOutput }) {
  // pieces of the log in order: {start, end, text}; a gap between two is not loaded
  const [pieces, setPieces] = useState([]);
  const [size, setSize] = useState(0);
  const [follow, setFollow] = useState(true);
  const box = useRef(null);
  const last = pieces.length ? pieces[pieces.length - 1].end : null;

  const keep = (list) => {
    let total = list.reduce((n, p) => n + (p.end - p.start), 0);
    const out = [...list];
    while (out.length > 1 && total > KEPT) total -= out[0].end - out[0].start, out.shift();
    return out;
  };

  useEffect(() => {
    setPieces([]);
    get(`/api/v2/jobs/${id}/log`, { limit: WINDOW }).then((w) => {
      setPieces([w]);
      setSize(w.size);
      setLastOutput(w.last_output);
    });
  }, [id]);

  // follow: what was written since the last piece; more than a window is skipped over
  useEffect(() => {
    if (!follow || last === null) return;
    get(`/api/v2/jobs/${id}/log`, { limit: 1 }).then((probe) => {
      setSize(probe.size);
      setLastOutput(probe.last_output);
      if (probe.size <= last) return;
      const params =
        probe.size - last > WINDOW ? { limit: WINDOW } : { start: last, limit: WINDOW };
      return get(`/api/v2/jobs/${id}/log`, params).then((w) =>
        setPieces((list) => {
          const end = list.length ? list[list.length - 1].end : 0;
          return w.start < end ? list : keep([...list, w]);
        }),
      );
    });
  }, [tick, follow]);

  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [pieces, follow]);

  const earlier = () => {
    if (!pieces.length || pieces[0].start === 0) return;
    get(`/api/v2/jobs/${id}/log`, { end: pieces[0].start, limit: WINDOW }).then((w) =>
      setPieces((list) => [w, ...list]),
    );
  };
  const first = pieces.length ? pieces[0].start : 0;
  return html`<section class="log">
    <header>
      <h3>Log</h3>
      <span class="muted">${bytes(size)}${running ? " · running" : ""}</span>
      <${LastOutput} at=${lastOutput} now=${now} running=${running} />
      <button disabled=${first === 0} onClick=${earlier} data-log="earlier">
        Load earlier${first ? ` (${bytes(first)} before)` : ""}
      </button>
      <label><input type="checkbox" checked=${follow} data-log="follow"
        onChange=${(e) => setFollow(e.currentTarget.checked)} /> follow</label>
    </header>
    <pre ref=${box} class="logtext" data-testid="log">${pieces.map(
      (p, i) =>
        html`${i > 0 && p.start > pieces[i - 1].end
          ? html`<span class="gap">… ${bytes(p.start - pieces[i - 1].end)} not shown …\n</span>`
          : null}${p.text}`,
    )}</pre>
  </section>`;
}

export function JobView({ id, me, tick, setError }) {
  const [job, setJob] = useState(null);
  const [runs, setRuns] = useState([]);
  const [deps, setDeps] = useState([]);
  const [dependants, setDependants] = useState([]);
  const [lastOutput, setLastOutput] = useState(null);
  const now = useNow(5000);
  useEffect(() => {
    let live = true;
    Promise.all([
      get(`/api/jobs/${id}`),
      get(`/api/v2/jobs/${id}/runs`),
      get(`/api/v2/jobs/${id}/dependants`),
    ])
      .then(([j, r, d]) => {
        if (!live) return;
        setJob(j);
        setRuns(r);
        setDependants(d);
        setDeps(j.dependencies || []);
      })
      .catch((err) => live && setError(err));
    return () => {
      live = false;
    };
  }, [id, tick.jobs]);
  if (!job) return html`<p class="muted">Loading job ${id}…</p>`;

  const may = allowed(me, job);
  const action = (key, label, path, what, sub = true) =>
    html`<button data-action=${key} disabled=${!may}
      onClick=${() => act({ key, label, path, what, sub }, [job]).catch(setError)}>${label}</button>`;
  const field = (name, value) => html`<dt>${name}</dt><dd>${value}</dd>`;
  return html`<section class="job">
    <${Breadcrumbs} id=${job.parent} tick=${tick.jobs} open=${true} />
    <h2><span class="muted">#${job.id}</span> ${job.title || "(untitled)"} <${State} state=${job.state} /></h2>
    <div class="actions">
      ${action("pause", "Pause", "/api/pausejobs", "pause")}
      ${action("start", "Start", "/api/startjobs", "start")}
      ${action("reset", "Reset", "/api/resetjobs", "reset")}
      ${isGroup(job) && action("reseterrors", "Reset errors", "/api/reseterrorjobs", "reset the failed frames of")}
      ${action("move", "Move…", "", "move")}
      ${isGroup(job) &&
      html`<a class="button" href=${link({ parent: job.id })}
        onClick=${(e) => onLink(e, { parent: job.id })}>Open the group</a>`}
    </div>
    <div class="columns">
      <dl class="fields">
        ${field("progress", html`<${Progress} job=${job} />`)}
        ${field("command", html`<code>${job.command || "(a group)"}</code>`)}
        ${field("directory", job.dir)}
        ${field("user", job.user)}
        ${field("priority", job.priority)}
        ${field("affinity", job.affinity)}
        ${field("worker", job.worker)}
        ${field("started", when(job.start_time))}
        ${field("duration", job.start_time ? duration(job.duration) : "")}
        ${field("last heard", job.state === "WORKING" ? when(job.ping_time) : "")}
        ${field("last output", html`<${LastOutput} at=${lastOutput} now=${now}
          running=${job.state === "WORKING"} />`)}
        ${field("runs / retries", `${job.run_done} / ${job.retry}`)}
        ${job.command && field("last run", lastRun(job) || (job.exit_code === 0 ? "exit 0" : ""))}
        ${field("timeout", job.timeout ? duration(job.timeout) : "none")}
        ${field("environment", html`<code>${job.environment}</code>`)}
        ${field("depends on", deps.length ? deps.map((d) => html`<${JobLink} id=${d} /> `) : "nothing")}
        ${field("needed by", dependants.length ? dependants.map((d) => html`<${JobLink} id=${d} /> `) : "nothing")}
      </dl>
      <section class="runs">
        <h3>Runs</h3>
        ${runs.length
          ? html`<table class="grid">
              <thead><tr><th>worker</th><th>state</th><th>start</th><th>duration</th><th>exit</th><th>why it ended</th></tr></thead>
              <tbody>
                ${runs.map(
                  (r) => html`<tr key=${r.id}>
                    <td>${r.worker}</td>
                    <td><${State} state=${r.state} /></td>
                    <td>${when(r.start)}</td>
                    <td class="num">${duration(r.duration)}</td>
                    <td class="num">${r.exit_code === null ? "" : r.exit_code}</td>
                    <td>${r.reason}</td>
                  </tr>`,
                )}
              </tbody>
            </table>`
          : html`<p class="muted">It has not run yet.</p>`}
      </section>
    </div>
    ${!isGroup(job) && html`<${Log} id=${job.id} tick=${tick.jobs} running=${job.state === "WORKING"}
      now=${now} lastOutput=${lastOutput} setLastOutput=${setLastOutput} />`}
  </section>`;
}
