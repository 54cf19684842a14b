// Corral's page: the shell (who you are, the views, live status, keys, theme) around
// the jobs, a job, the workers and the farm. Preact components written with htm: no
// build step, the browser loads these modules as they are.
import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { follow, get, token, Unauthorized } from "./api.js";
import { FarmView } from "./farm.js";
import { JobView } from "./job.js";
import { JobsView } from "./jobs.js";
import { html, link, navigate, onLink, readLocation } from "./util.js";
import { WorkersView } from "./workers.js";

const THEME_KEY = "corral.theme";

const HELP = [
  ["/", "search the titles"],
  ["j / k", "move down / up the list"],
  ["x", "select the highlighted job"],
  ["Enter", "open the highlighted job"],
  ["p", "pause the selection (or the highlighted job)"],
  ["s", "start the selection (or the highlighted job)"],
  ["n", "next page"],
  ["g then j / w / f", "go to jobs / workers / farm"],
  ["t", "light or dark theme"],
  ["?", "this list"],
  ["Esc", "close it"],
];

function TokenPrompt({ reason, onToken }) {
  const [value, setValue] = useState("");
  return html`<form
    class="token"
    onSubmit=${(e) => {
      e.preventDefault();
      onToken(value.trim());
    }}
  >
    <h2>This Corral needs an API token</h2>
    <p class="muted">${reason}</p>
    <p>An admin creates one with <code>corral token create --role user --name NAME</code>.
      It is kept for this tab only.</p>
    <input type="password" name="token" autocomplete="off" placeholder="corral_…"
      value=${value} onInput=${(e) => setValue(e.currentTarget.value)} autofocus />
    <button class="primary" type="submit" disabled=${!value.trim()}>Sign in</button>
  </form>`;
}

function Help({ close }) {
  return html`<div class="overlay" onClick=${close}>
    <div class="help" role="dialog" aria-label="keyboard shortcuts" onClick=${(e) => e.stopPropagation()}>
      <h2>Keys</h2>
      <dl>${HELP.map(([k, what]) => html`<dt><kbd>${k}</kbd></dt><dd>${what}</dd>`)}</dl>
      <button onClick=${close}>Close</button>
    </div>
  </div>`;
}

function App() {
  const [where, setWhere] = useState(readLocation());
  const [me, setMe] = useState(null);
  const [needToken, setNeedToken] = useState(null);
  const [error, setError] = useState(null);
  const [live, setLive] = useState("connecting");
  const [tick, setTick] = useState({ jobs: 0, workers: 0 });
  const [help, setHelp] = useState(false);
  const [theme, setTheme] = useState(localStorage.getItem(THEME_KEY) || "");
  const searchRef = useRef(null);
  const keys = useRef(null);
  const pendingG = useRef(false);

  useEffect(() => {
    const moved = () => setWhere(readLocation());
    window.addEventListener("popstate", moved);
    window.addEventListener("corral:navigate", moved);
    return () => {
      window.removeEventListener("popstate", moved);
      window.removeEventListener("corral:navigate", moved);
    };
  }, []);

  useEffect(() => {
    if (theme) document.documentElement.dataset.theme = theme;
    else delete document.documentElement.dataset.theme;
  }, [theme]);

  const signIn = () =>
    get("/api/v2/me")
      .then((who) => {
        setMe(who);
        setNeedToken(null);
      })
      .catch((err) => {
        if (err instanceof Unauthorized) setNeedToken(err.message);
        else setError(err);
      });
  useEffect(() => {
    signIn();
  }, []);

  // the change feed, once signed in: each message bumps the tables it names, and the
  // views showing them read again
  useEffect(() => {
    if (!me) return;
    return follow(
      (tables) =>
        setTick((t) => ({
          jobs: t.jobs + (tables.includes("jobs") ? 1 : 0),
          workers: t.workers + (tables.includes("workers") ? 1 : 0),
        })),
      setLive,
    );
  }, [me]);

  const fail = (err) => {
    if (err instanceof Unauthorized) {
      token.clear();
      setMe(null);
      setNeedToken(err.message);
    } else setError(err);
  };

  useEffect(() => {
    const onKey = (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const target = e.target;
      // keys typed into a text field are its own; a checkbox or a button takes none
      const typing =
        target &&
        (target.isContentEditable ||
          /^(TEXTAREA|SELECT)$/.test(target.tagName) ||
          (target.tagName === "INPUT" && !/^(checkbox|radio|button|submit)$/.test(target.type)));
      if (e.key === "Escape") {
        setHelp(false);
        if (typing) target.blur();
        return;
      }
      if (typing) return;
      if (pendingG.current) {
        pendingG.current = false;
        const to = { j: {}, w: { view: "workers" }, f: { view: "farm" } }[e.key];
        if (to) {
          navigate(to);
          e.preventDefault();
        }
        return;
      }
      if (e.key === "?") setHelp((h) => !h);
      else if (e.key === "/" && searchRef.current) searchRef.current.focus();
      else if (e.key === "g") pendingG.current = true;
      else if (e.key === "t") toggleTheme();
      else if (!(keys.current && keys.current(e.key))) return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  const toggleTheme = () => {
    const dark =
      theme === "dark" ||
      (!theme && window.matchMedia("(prefers-color-scheme: dark)").matches);
    const next = dark ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    setTheme(next);
  };

  if (needToken !== null) {
    return html`<main class="signin">
      <${TokenPrompt}
        reason=${needToken}
        onToken=${(value) => {
          token.set(value);
          signIn();
        }}
      />
    </main>`;
  }
  if (!me) return html`<p class="boot">Loading Corral…</p>`;

  const view = where.view || "jobs";
  keys.current = null;
  const tab = (name, label, params) =>
    html`<a class=${view === name ? "on" : ""} href=${link(params)}
      onClick=${(e) => onLink(e, params)}>${label}</a>`;
  let body;
  if (view === "job" && where.id) {
    body = html`<${JobView} id=${Number(where.id)} me=${me} tick=${tick} setError=${fail} />`;
  } else if (view === "workers") {
    body = html`<${WorkersView} me=${me} tick=${tick} setError=${fail} />`;
  } else if (view === "farm") {
    body = html`<${FarmView} tick=${tick} setError=${fail} />`;
  } else {
    body = html`<${JobsView} where=${where} me=${me} tick=${tick} searchRef=${searchRef}
      keys=${keys} setError=${fail} />`;
  }
  return html`<div class="shell">
    <header class="top">
      <a class="brand" href="/" onClick=${(e) => onLink(e, {})}>Corral</a>
      <nav class="tabs">
        ${tab("jobs", "Jobs", {})}
        ${tab("workers", "Workers", { view: "workers" })}
        ${tab("farm", "Farm", { view: "farm" })}
      </nav>
      <span class=${`live ${live}`} data-live=${live} title="changes arrive as they happen">
        ${live === "live" ? "● live" : live === "lost" ? "○ reconnecting" : "○ connecting"}
      </span>
      <span class="who">${me.open ? "open mode (loopback)" : me.anonymous ? "anonymous: reads only" : `${me.name} (${me.role})`}</span>
      ${token.get() &&
      html`<button class="link" onClick=${() => {
        token.clear();
        location.reload();
      }}>Sign out</button>`}
      <button class="link" title="light or dark (t)" onClick=${toggleTheme}>◐</button>
      <button class="link" title="keys (?)" onClick=${() => setHelp(true)}>?</button>
    </header>
    ${error &&
    html`<div class="error" role="alert">
      <span>${error.message || String(error)}</span>
      <button class="link" onClick=${() => setError(null)}>dismiss</button>
    </div>`}
    <main>${body}</main>
    ${help && html`<${Help} close=${() => setHelp(false)} />`}
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
