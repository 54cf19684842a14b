// Shared bits of the views: the location as state, formatting, the progress bar.
// Every text from the farm (titles, commands, logs) goes into the page as a text child,
// which Preact sets as text, never as HTML.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";

export { html };

// The view and its filters live in the query string, so a view can be shared as a link.
export function readLocation() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

export function navigate(params, { replace = false } = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  const url = text ? `/?${text}` : "/";
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  window.dispatchEvent(new Event("corral:navigate"));
}

export function link(params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `/?${text}` : "/";
}

// a plain click on an in-page link navigates without reloading the page
export function onLink(event, params) {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(params);
}

export function when(epoch) {
  if (!epoch) return "";
  const d = new Date(epoch * 1000);
  const today = new Date();
  return d.toDateString() === today.toDateString()
    ? d.toLocaleTimeString()
    : d.toLocaleString();
}

export function ago(epoch) {
  if (!epoch) return "never";
  return `${duration(Date.now() / 1000 - epoch)} ago`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  let s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

export function bytes(n) {
  if (!n) return "0";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export const isGroup = (job) => job.command === "";

// A group's leaves by state, from its counters (no listing of its leaves).
export function counts(job) {
  const finished = job.total_finished;
  const working = job.total_working;
  const error = job.total_errors;
  const waiting = Math.max(job.total - finished - working - error, 0);
  return { finished, working, error, waiting, total: job.total };
}

export function Progress({ job }) {
  if (isGroup(job)) {
    const c = counts(job);
    if (!c.total) return html`<span class="muted">empty</span>`;
    const part = (n, cls) =>
      n ? html`<span class=${`seg ${cls}`} style=${`width:${(100 * n) / c.total}%`}></span>` : null;
    const title = `${c.finished} finished, ${c.working} working, ${c.error} failed, ${c.waiting} waiting of ${c.total}`;
    return html`<span class="bar" title=${title} aria-label=${title} data-finished=${c.finished}
        data-working=${c.working} data-error=${c.error} data-total=${c.total}
        >${part(c.finished, "s-finished")}${part(c.working, "s-working")}${part(
        c.error,
        "s-error",
      )}${part(c.waiting, "s-waiting")}</span
      ><span class="frac">${c.finished}/${c.total}</span>`;
  }
  const fraction = job.state === "FINISHED" ? 1 : Math.min(Math.max(job.progress || 0, 0), 1);
  return html`<span class="bar" title=${`${Math.round(fraction * 100)}%`}
      ><span class=${`seg s-${job.state.toLowerCase()}`} style=${`width:${fraction * 100}%`}></span
    ></span>`;
}

export function State({ state, why = "" }) {
  return html`<span class=${`state st-${state.toLowerCase()}`} title=${why || undefined}
    >${state}</span>`;
}

// How a job's last run ended, when that says something: a failing exit, or why it was
// stopped ("paused", "worker lost"); an exit with 0 is what FINISHED already says.
export function lastRun(job) {
  if (job.exit_code) return `exit ${job.exit_code}`;
  return job.reason || "";
}

export const STATES = ["WAITING", "PENDING", "WORKING", "FINISHED", "ERROR", "PAUSED"];

// `value` as it was at most once per `ms`: the change feed may say "changed" a few times
// a second, and a view that reads a lot on each (the farm, a page of jobs) reads again at
// most once per `ms`, the last change always included (a trailing read).
export function useThrottled(value, ms) {
  const [shown, setShown] = useState(value);
  const lastAt = useRef(0);
  useEffect(() => {
    if (value === shown) return;
    const wait = lastAt.current + ms - Date.now();
    if (wait <= 0) {
      lastAt.current = Date.now();
      setShown(value);
      return;
    }
    const timer = setTimeout(() => {
      lastAt.current = Date.now();
      setShown(value);
    }, wait);
    return () => clearTimeout(timer);
  }, [value, shown, ms]);
  return shown;
}

// the time now, again every `ms`: for "4 min ago" texts while nothing else changes
export function useNow(ms) {
  const [now, setNow] = useState(Date.now() / 1000);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now() / 1000), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

// a running job silent this long is marked: a frame may be stuck
export const QUIET_AFTER = 5 * 60;

// "last output 4m02s ago", marked past QUIET_AFTER; nothing for a job not running
export function LastOutput({ at, now, running, short = false }) {
  if (!running) return null;
  if (!at) return html`<span class="quiet-none muted" data-last-output="none">no output yet</span>`;
  const silent = Math.max(now - at, 0);
  const quiet = silent >= QUIET_AFTER;
  return html`<span class=${quiet ? "quiet" : "muted"} data-last-output=${Math.round(silent)}
    data-quiet=${quiet ? "yes" : "no"}
    title=${`the last output arrived at ${new Date(at * 1000).toLocaleTimeString()}`}
    >${short ? "" : "last output "}${duration(silent)} ago</span>`;
}
