// Submitting from the page: one job, or a group of frames (a group, then its frames in
// one bulk call, so a hundred frames are one transaction).
import { useState } from "preact/hooks";
import { call } from "./api.js";
import { html, navigate } from "./util.js";

export function Submit({ parent, me, setError, done }) {
  const [form, setForm] = useState({
    title: "",
    command: "",
    first: 1,
    last: 1,
    priority: 1000,
    affinity: "",
  });
  const [busy, setBusy] = useState(false);
  const field = (name) => (e) => setForm({ ...form, [name]: e.currentTarget.value });
  const frames = Math.max(Number(form.last) - Number(form.first) + 1, 0);

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      const common = {
        priority: Number(form.priority),
        affinity: form.affinity,
        user: me.role === "user" ? me.name : "",
      };
      if (frames <= 1 && !form.command.includes("{frame}")) {
        await call("PUT", "/api/jobs", {
          ...common,
          parent,
          title: form.title,
          command: form.command,
        });
      } else {
        const group = await call("PUT", "/api/jobs", { ...common, parent, title: form.title });
        const jobs = [];
        for (let f = Number(form.first); f <= Number(form.last); f += 1) {
          jobs.push({
            title: `${form.title} frame ${f}`,
            command: form.command.replaceAll("{frame}", String(f)),
            user: common.user,
          });
        }
        await call("POST", "/api/v2/jobs/bulk", { parent: group, jobs });
        navigate({ parent: group });
      }
      done();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return html`<form class="submit" onSubmit=${submit} aria-label="submit a job">
    <label>Title <input name="title" required value=${form.title} onInput=${field("title")} /></label>
    <label class="wide">Command
      <input name="command" required placeholder="render shot.blend --frame {frame}"
        value=${form.command} onInput=${field("command")} /></label>
    <label>Frames <input name="first" type="number" min="0" value=${form.first} onInput=${field("first")} />
      to <input name="last" type="number" min="0" value=${form.last} onInput=${field("last")} /></label>
    <label>Priority <input name="priority" type="number" value=${form.priority} onInput=${field("priority")} /></label>
    <label>Affinity <input name="affinity" value=${form.affinity} onInput=${field("affinity")} /></label>
    <button class="primary" type="submit" disabled=${busy || frames < 1}>
      ${frames > 1 ? `Submit ${frames} frames` : "Submit"}
    </button>
    <span class="muted small">{frame} in the command becomes each frame's number</span>
  </form>`;
}
