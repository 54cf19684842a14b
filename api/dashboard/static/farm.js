// The farm at a glance: jobs and workers by state, busy and idle slots, and two charts:
// runs ended per minute over the last hour (from the events, server side), and busy slots
// and queue depth as this page has seen them since it opened.
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { get } from "./api.js";
import { html } from "./util.js";

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
  // [time, busy, queued] as seen since the page opened, one sample per read
  const seen = useRef([[], [], []]);
  const [samples, setSamples] = useState(seen.current);
  useEffect(() => {
    let live = true;
    get("/api/v2/farm")
      .then((f) => {
        if (!live) return;
        setFarm(f);
        const [t, busy, queued] = seen.current;
        const now = Date.now() / 1000;
        // one sample a second at most: the feed may say "changed" several times a second
        if (t.length && now - t[t.length - 1] < 1) t.pop(), busy.pop(), queued.pop();
        t.push(now);
        busy.push(f.busy);
        queued.push((f.jobs.WAITING || 0) + (f.jobs.PENDING || 0));
        seen.current = [t.slice(-3600), busy.slice(-3600), queued.slice(-3600)];
        setSamples(seen.current);
      })
      .catch((err) => live && setError(err));
    return () => {
      live = false;
    };
  }, [tick.jobs, tick.workers]);
  if (!farm) return html`<p class="muted">Loading the farm…</p>`;
  const j = farm.jobs;
  const w = farm.workers;
  const minutes = [
    farm.minutes.map((m) => m.at),
    farm.minutes.map((m) => m.finished),
    farm.minutes.map((m) => m.failed),
  ];
  return html`<section class="farm">
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
        title="Busy slots and queue depth, since this page opened"
        series=${[
          { label: "busy slots", stroke: "#3b82f6" },
          { label: "queued", stroke: "#b7791f" },
        ]}
        data=${samples}
      />
    </div>
  </section>`;
}
