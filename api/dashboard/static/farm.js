// The farm at a glance: jobs and workers by state, busy and idle slots, and two charts of
// the last hour, both from the server: runs ended per minute (from the events), and queue
// depth and busy slots (the farm as sampled once a minute, then as read now).
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { get } from "./api.js";
import { html, useThrottled } from "./util.js";

// the most the farm is read again per change message: once a second
const REREAD_MS = 1000;

function Chart({ title, series, data }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    // the box's content width: its padding is inside clientWidth
    const width = Math.max(box.current.clientWidth - 16, 300);
    plot.current = new uPlot(
      {
        title,
        width,
        height: 220,
        series: [{}, ...series],
        scales: { x: { time: true } },
        axes: [{ stroke: "currentColor" }, { stroke: "currentColor" }],
      },
      data,
      box.current,
    );
    return () => plot.current.destroy();
  }, []);
  useEffect(() => {
    if (plot.current) plot.current.setData(data);
  }, [data]);
  return html`<div class="chart" ref=${box}></div>`;
}

const Tile = ({ label, value, cls }) =>
  html`<div class=${`tile ${cls || ""}`} data-tile=${label}>
    <div class="value">${value}</div><div class="label">${label}</div>
  </div>`;

export function FarmView({ tick, setError }) {
  const [farm, setFarm] = useState(null);
  const reread = useThrottled(tick.jobs + tick.workers, REREAD_MS);
  // how many times the farm was read: the tests count them
  const reads = useRef(0);
  useEffect(() => {
    let live = true;
    reads.current += 1;
    get("/api/v2/farm")
      .then((f) => live && setFarm(f))
      .catch((err) => live && setError(err));
    return () => {
      live = false;
    };
  }, [reread]);
  if (!farm) return html`<p class="muted">Loading the farm…</p>`;
  const j = farm.jobs;
  const w = farm.workers;
  const minutes = [
    farm.minutes.map((m) => m.at),
    farm.minutes.map((m) => m.finished),
    farm.minutes.map((m) => m.failed),
  ];
  // the samples of the hour, and the farm as read now at the end of the line
  const queuedNow = (j.WAITING || 0) + (j.PENDING || 0);
  const now = Math.floor(Date.now() / 1000);
  const depth = [
    [...farm.history.map((h) => h.at), now],
    [...farm.history.map((h) => h.queued), queuedNow],
    [...farm.history.map((h) => h.busy), farm.busy],
  ];
  return html`<section class="farm" data-history=${farm.history.length} data-reads=${reads.current}>
    <div class="tiles">
      <${Tile} label="waiting" value=${j.WAITING || 0} />
      <${Tile} label="pending" value=${j.PENDING || 0} />
      <${Tile} label="working" value=${j.WORKING || 0} cls="s-working" />
      <${Tile} label="finished" value=${j.FINISHED || 0} cls="s-finished" />
      <${Tile} label="failed" value=${j.ERROR || 0} cls="s-error" />
      <${Tile} label="busy slots" value=${farm.busy} />
      <${Tile} label="idle slots" value=${Math.max(farm.slots - farm.busy, 0)} />
      <${Tile} label="workers lost" value=${w.TIMEOUT || 0} cls=${w.TIMEOUT ? "s-error" : ""} />
      <${Tile} label="workers stopped" value=${w.STOPPED || 0} />
    </div>
    <div class="charts">
      <${Chart}
        title="Runs ended per minute, last hour"
        series=${[
          { label: "finished", stroke: "#2e9d5b", fill: "rgba(46,157,91,0.15)" },
          { label: "failed", stroke: "#d64545", fill: "rgba(214,69,69,0.15)" },
        ]}
        data=${minutes}
      />
      <${Chart}
        title="Queue depth and busy slots, last hour (sampled each minute)"
        series=${[
          { label: "queued", stroke: "#b7791f", fill: "rgba(183,121,31,0.12)" },
          { label: "busy slots", stroke: "#3b82f6" },
        ]}
        data=${depth}
      />
    </div>
  </section>`;
}
