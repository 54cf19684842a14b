// The workers: what each runs, its load, its rules, when it was last heard of; stop and
// start it, edit its rules (an admin's). A lost worker (TIMEOUT: no heartbeat for too
// long) comes first, in red.
import { useEffect, useState } from "preact/hooks";
import { call, get } from "./api.js";
import { ago, bytes, html, link, onLink, State } from "./util.js";

// heartbeats report per-core loads (a list, as text) and memory in MB
function cpu(text) {
  try {
    const loads = JSON.parse(text || "[]");
    if (!loads.length) return "";
    return `${Math.round(loads.reduce((a, b) => a + b, 0) / loads.length)}% of ${loads.length}`;
  } catch {
    return "";
  }
}

const ORDER = { TIMEOUT: 0, WORKING: 1, WAITING: 2 };

const rulesOf = (w) => (w.affinity || "").split("\n").filter(Boolean);

// a worker's affinity rules, one a line, in the order it prefers them: each line a set of
// names joined by commas; the worker takes the jobs whose affinity one rule covers
function RulesEditor({ worker, close, setError }) {
  const [text, setText] = useState(rulesOf(worker).join("\n"));
  const [busy, setBusy] = useState(false);
  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      await call("POST", "/api/workers", { [worker.name]: { affinity: text } });
      close();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="rules-edit" onSubmit=${save} aria-label=${`rules of ${worker.name}`}>
    <textarea name="rules" rows=${Math.max(rulesOf(worker).length + 1, 2)} cols="24"
      placeholder="LINUX,GPU" value=${text} onInput=${(e) => setText(e.currentTarget.value)}
      onKeyDown=${(e) => e.key === "Escape" && close()}></textarea>
    <span class="muted small">one rule a line, names joined by commas</span>
    <span>
      <button class="primary" type="submit" data-rules="save" disabled=${busy}>Save</button>
      <button type="button" onClick=${close}>Cancel</button>
    </span>
  </form>`;
}

export function WorkersView({ me, tick, setError }) {
  const [workers, setWorkers] = useState(null);
  const [editing, setEditing] = useState(null);
  useEffect(() => {
    let live = true;
    get("/api/workers")
      .then((list) => live && setWorkers(list))
      .catch((err) => live && setError(err));
    return () => {
      live = false;
    };
  }, [tick.workers]);
  if (!workers) return html`<p class="muted">Loading workers…</p>`;
  const admin = me.role === "admin" && !me.anonymous;
  const sorted = [...workers].sort(
    (a, b) => ORDER[a.state] - ORDER[b.state] || a.name.localeCompare(b.name),
  );
  const toggle = async (w) => {
    const stop = w.active;
    const verb = stop ? "Stop" : "Start";
    const more = stop ? " Its running jobs go back to the queue." : "";
    if (!confirm(`${verb} worker ${w.name}?${more}`)) return;
    try {
      await call("POST", stop ? "/api/stopworkers" : "/api/startworkers", [w.name]);
    } catch (err) {
      setError(err);
    }
  };
  return html`<section class="workers">
    ${!workers.length && html`<p class="empty">No worker has registered yet: start one with
      <code>corral worker --server ${location.origin}</code>.</p>`}
    <table class="grid">
      <thead>
        <tr><th>name</th><th>state</th><th>in dispatch</th><th>current job</th><th>slots</th>
          <th>CPU</th><th>memory free</th><th>rules</th><th>finished / failed</th>
          <th>last seen</th><th></th></tr>
      </thead>
      <tbody>
        ${sorted.map(
          (w) => html`<tr key=${w.name} data-worker=${w.name}
              class=${w.state === "TIMEOUT" ? "lost" : w.active ? "" : "stopped"}>
            <td>${w.name} <span class="muted small">${w.ip}</span></td>
            <td><${State} state=${w.state === "TIMEOUT" ? "LOST" : w.state} /></td>
            <td>${w.active ? "yes" : "stopped"}</td>
            <td>${w.last_job && w.state === "WORKING"
              ? html`<a href=${link({ view: "job", id: w.last_job })}
                  onClick=${(e) => onLink(e, { view: "job", id: w.last_job })}>#${w.last_job}</a>`
              : ""}</td>
            <td class="num">${w.slots}</td>
            <td>${cpu(w.cpu)}</td>
            <td>${w.total_memory ? `${bytes(w.free_memory * 1024 * 1024)} of ${bytes(w.total_memory * 1024 * 1024)}` : ""}</td>
            <td class="rules">${editing === w.name
              ? html`<${RulesEditor} worker=${w} close=${() => setEditing(null)} setError=${setError} />`
              : html`${rulesOf(w).map((r) => html`<span class="rule">${r}</span>`)}${admin &&
                  html` <button class="link small" data-action="rules" title="edit the rules"
                    onClick=${() => setEditing(w.name)}>edit</button>`}`}</td>
            <td class="num">${w.finished} / ${w.error}</td>
            <td>${ago(w.ping_time)}</td>
            <td>${admin &&
            html`<button data-action=${w.active ? "stop" : "start"} onClick=${() => toggle(w)}>
              ${w.active ? "Stop" : "Start"}</button>`}</td>
          </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
