// Submitting from the page: one job, or a group of frames (a group, then its frames in
// one bulk call, so a hundred frames are one transaction), with what it waits for: jobs
// named by id, and for a group of frames a final job (a comp, an encode) that waits for
// every frame.
import { useState } from "preact/hooks";
import { call } from "./api.js";
import { html, navigate } from "./util.js";

// "12, 14 15": job ids, in the order given, each once
export function parseIds(text) {
  const ids = [];
  for (const word of text.split(/[\s,;]+/).filter(Boolean)) {
    const id = Number(word.replace(/^#/, ""));
    if (!Number.isSafeInteger(id) || id < 1) throw new Error(`a job id is a whole number above 0, not ${word}`);
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}

export function Submit({ parent, me, setError, done }) {
  const [form, setForm] = useState({
    title: "",
    command: "",
    first: 1,
    last: 1,
    priority: 1000,
    affinity: "",
    pattern: "",
    after: "",
    final: "",
  });
  const [busy, setBusy] = useState(false);
  const field = (name) => (e) => setForm({ ...form, [name]: e.currentTarget.value });
  const frames = Math.max(Number(form.last) - Number(form.first) + 1, 0);
  const many = frames > 1 || form.command.includes("{frame}");

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      const dependencies = parseIds(form.after);
      const common = {
        priority: Number(form.priority),
        affinity: form.affinity,
        user: me.role === "user" ? me.name : "",
      };
      if (!many) {
        await call("PUT", "/api/jobs", {
          ...common,
          parent,
          title: form.title,
          command: form.command,
          progress_pattern: form.pattern,
          dependencies,
        });
      } else {
        // the group waits for the jobs named: none of its frames starts before them
        const group = await call("PUT", "/api/jobs", {
          ...common,
          parent,
          title: form.title,
          dependencies,
        });
        const jobs = [];
        for (let f = Number(form.first); f <= Number(form.last); f += 1) {
          jobs.push({
            title: `${form.title} frame ${f}`,
            command: form.command.replaceAll("{frame}", String(f)),
            progress_pattern: form.pattern,
            user: common.user,
          });
        }
        const { ids } = await call("POST", "/api/v2/jobs/bulk", { parent: group, jobs });
        if (form.final.trim()) {
          await call("PUT", "/api/jobs", {
            ...common,
            parent: group,
            title: `${form.title} final`,
            command: form.final,
            dependencies: ids,
          });
        }
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
    <label>Frames <span class="range"
      ><input name="first" type="number" min="0" aria-label="first frame" value=${form.first}
        onInput=${field("first")} /> to <input name="last" type="number" min="0"
        aria-label="last frame" value=${form.last} onInput=${field("last")} /></span></label>
    <label>Priority <input name="priority" type="number" value=${form.priority} onInput=${field("priority")} /></label>
    <label>Affinity <input name="affinity" value=${form.affinity} onInput=${field("affinity")} /></label>
    <label title="a regular expression whose first group is the percentage the output tells"
      >Progress pattern <input name="pattern" placeholder="(\d+)%" value=${form.pattern}
        onInput=${field("pattern")} /></label>
    <label title="job ids: this job (or the group of frames) starts once they have finished"
      >After jobs <input name="after" size="12" placeholder="12, 15" value=${form.after}
        onInput=${field("after")} /></label>
    ${many &&
    html`<label class="wide" title="a last job in the group, run once every frame has finished"
      >Then, after every frame
      <input name="final" placeholder="encode shot.mp4 (optional)" value=${form.final}
        onInput=${field("final")} /></label>`}
    <button class="primary" type="submit" disabled=${busy || frames < 1}>
      ${many ? `Submit ${frames} frames${form.final.trim() ? " and a final job" : ""}` : "Submit"}
    </button>
    <span class="muted small">{frame} in the command becomes each frame's number</span>
  </form>`;
}
