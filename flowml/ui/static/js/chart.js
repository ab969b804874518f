// Hand-written canvas charts: multi-series line charts (step/time x, log y, EMA smoothing),
// scatter plots and parallel coordinates. Sizes follow the CSS box; drawn at devicePixelRatio.

export const PALETTE = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7ea4", "#57606a",
  "#fb8500", "#2da44e"];

function setup(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, hgt = canvas.clientHeight || 300;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(hgt * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w, h: hgt };
}

function niceTicks(lo, hi, count = 6) {
  if (!isFinite(lo) || !isFinite(hi)) return [];
  if (lo === hi) { lo -= 1; hi += 1; }
  const span = hi - lo, raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) || 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmtTick(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

function fmtTime(ms, span) {
  const d = new Date(ms), p = (n) => String(n).padStart(2, "0");
  if (span < 2 * 86400e3) return `${p(d.getHours())}:${p(d.getMinutes())}${span < 600e3 ? ":" + p(d.getSeconds()) : ""}`;
  return `${d.getMonth() + 1}/${d.getDate()}`;
}

/** Exponential moving average with TensorBoard's debiasing; weight in [0, 1). */
export function smooth(ys, weight) {
  if (!weight) return ys;
  const out = new Array(ys.length);
  let last = 0, n = 0;
  for (let i = 0; i < ys.length; i++) {
    last = last * weight + (1 - weight) * ys[i];
    n++;
    out[i] = last / (1 - Math.pow(weight, n));
  }
  return out;
}

function extent(arrays) {
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) for (const v of a) if (isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [lo, hi];
}

function frame(ctx, box, xt, yt, sx, sy, xfmt, yfmt) {
  ctx.strokeStyle = "#d0d7de"; ctx.fillStyle = "#57606a"; ctx.lineWidth = 1;
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (const v of yt) {
    const y = sy(v);
    ctx.beginPath(); ctx.moveTo(box.l, y); ctx.lineTo(box.r, y); ctx.stroke();
    ctx.fillText(yfmt(v), box.l - 4, y);
  }
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  for (const v of xt) {
    const x = sx(v);
    ctx.beginPath(); ctx.moveTo(x, box.b); ctx.lineTo(x, box.b + 4); ctx.stroke();
    ctx.fillText(xfmt(v), x, box.b + 6);
  }
  ctx.strokeStyle = "#8c959f";
  ctx.strokeRect(box.l, box.t, box.r - box.l, box.b - box.t);
}

/**
 * series: [{name, xs, ys, color?}]; opts: {xMode: "step"|"time", logY, smoothing, xLabel}.
 * Returns the number of points drawn (also set on canvas.dataset.points).
 */
export function lineChart(canvas, series, opts = {}) {
  const { ctx, w, h } = setup(canvas);
  const logY = !!opts.logY;
  const prepared = series.map((s, i) => {
    let xs = s.xs, ys = smooth(s.ys, opts.smoothing || 0);
    if (logY) {
      const keep = ys.map((v) => v > 0);
      xs = xs.filter((_, j) => keep[j]); ys = ys.filter((_, j) => keep[j]).map(Math.log10);
    }
    return { ...s, xs, ys, raw: s.ys, color: s.color || PALETTE[i % PALETTE.length] };
  });
  const legendRows = Math.ceil(prepared.length / 3);
  const box = { l: 56, r: w - 12, t: 10 + legendRows * 16, b: h - 34 };
  let [x0, x1] = extent(prepared.map((s) => s.xs));
  let [y0, y1] = extent(prepared.map((s) => s.ys));
  if (!isFinite(x0)) {
    ctx.fillStyle = "#57606a"; ctx.textAlign = "center";
    ctx.fillText(logY ? "No positive values to show on a log scale" : "No data", w / 2, h / 2);
    canvas.dataset.points = "0";
    return 0;
  }
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const sx = (v) => box.l + ((v - x0) / (x1 - x0)) * (box.r - box.l);
  const sy = (v) => box.b - ((v - y0) / (y1 - y0)) * (box.b - box.t);
  const yt = logY ? niceTicks(y0, y1, 5).filter((v) => Number.isInteger(v) || (y1 - y0) < 3) : niceTicks(y0, y1, 5);
  const xt = opts.xMode === "time" ? niceTicks(x0, x1, 5) : niceTicks(x0, x1, 6);
  frame(ctx, box, xt, yt, sx, sy,
    opts.xMode === "time" ? (v) => fmtTime(v, x1 - x0) : fmtTick,
    logY ? (v) => fmtTick(Math.pow(10, v)) : fmtTick);
  if (opts.xLabel) { ctx.textAlign = "right"; ctx.fillText(opts.xLabel, box.r, h - 12); }
  let drawn = 0;
  ctx.save();
  ctx.beginPath(); ctx.rect(box.l, box.t, box.r - box.l, box.b - box.t); ctx.clip();
  for (const s of prepared) {
    if (opts.smoothing && !logY) { // faint raw line under the smoothed one
      ctx.globalAlpha = 0.2; ctx.strokeStyle = s.color; ctx.lineWidth = 1;
      ctx.beginPath();
      s.raw.forEach((v, j) => (j ? ctx.lineTo(sx(s.xs[j]), sy(v)) : ctx.moveTo(sx(s.xs[j]), sy(v))));
      ctx.stroke(); ctx.globalAlpha = 1;
    }
    ctx.strokeStyle = s.color; ctx.lineWidth = 1.6; ctx.beginPath();
    for (let j = 0; j < s.xs.length; j++) {
      const X = sx(s.xs[j]), Y = sy(s.ys[j]);
      if (j === 0) ctx.moveTo(X, Y); else ctx.lineTo(X, Y);
    }
    ctx.stroke();
    if (s.xs.length === 1) { ctx.fillStyle = s.color; ctx.beginPath(); ctx.arc(sx(s.xs[0]), sy(s.ys[0]), 3, 0, 7); ctx.fill(); }
    drawn += s.xs.length;
  }
  ctx.restore();
  // legend
  ctx.textAlign = "left"; ctx.textBaseline = "middle";
  prepared.forEach((s, i) => {
    const x = box.l + (i % 3) * ((box.r - box.l) / 3), y = 8 + Math.floor(i / 3) * 16;
    ctx.fillStyle = s.color; ctx.fillRect(x, y - 2, 14, 4);
    ctx.fillStyle = "#24292f"; ctx.fillText(String(s.name).slice(0, 48), x + 18, y);
  });
  canvas.dataset.points = String(drawn);
  return drawn;
}

/** points: [{x, y, label, color?}] */
export function scatterChart(canvas, points, opts = {}) {
  const { ctx, w, h } = setup(canvas);
  const box = { l: 56, r: w - 12, t: 12, b: h - 34 };
  const ok = points.filter((p) => isFinite(p.x) && isFinite(p.y));
  if (!ok.length) {
    ctx.fillStyle = "#57606a"; ctx.textAlign = "center";
    ctx.fillText("Pick two numeric columns", w / 2, h / 2);
    canvas.dataset.points = "0";
    return 0;
  }
  let [x0, x1] = extent([ok.map((p) => p.x)]), [y0, y1] = extent([ok.map((p) => p.y)]);
  if (x0 === x1) { x0 -= 1; x1 += 1; } if (y0 === y1) { y0 -= 1; y1 += 1; }
  const px = (x1 - x0) * 0.06, py = (y1 - y0) * 0.06; x0 -= px; x1 += px; y0 -= py; y1 += py;
  const sx = (v) => box.l + ((v - x0) / (x1 - x0)) * (box.r - box.l);
  const sy = (v) => box.b - ((v - y0) / (y1 - y0)) * (box.b - box.t);
  frame(ctx, box, niceTicks(x0, x1), niceTicks(y0, y1, 5), sx, sy, fmtTick, fmtTick);
  ctx.textAlign = "right"; ctx.fillText(opts.xLabel || "", box.r, h - 12);
  ctx.textAlign = "left"; ctx.fillText(opts.yLabel || "", box.l + 4, box.t + 4);
  ok.forEach((p, i) => {
    ctx.fillStyle = p.color || PALETTE[i % PALETTE.length];
    ctx.beginPath(); ctx.arc(sx(p.x), sy(p.y), 5, 0, 7); ctx.fill();
    ctx.fillStyle = "#24292f"; ctx.textBaseline = "bottom"; ctx.fillText(String(p.label || "").slice(0, 20), sx(p.x) + 6, sy(p.y) - 2);
  });
  canvas.dataset.points = String(ok.length);
  return ok.length;
}

/** dims: [name]; rows: [{label, color?, values: {dim: number}}] */
export function parallelCoords(canvas, dims, rows) {
  const { ctx, w, h } = setup(canvas);
  if (dims.length < 2 || !rows.length) {
    ctx.fillStyle = "#57606a"; ctx.textAlign = "center";
    ctx.fillText("Needs at least two numeric params/metrics", w / 2, h / 2);
    canvas.dataset.points = "0";
    return 0;
  }
  const box = { l: 40, r: w - 40, t: 28, b: h - 24 };
  const xs = dims.map((_, i) => box.l + (i * (box.r - box.l)) / (dims.length - 1));
  const ranges = dims.map((d) => {
    let [lo, hi] = extent([rows.map((r) => r.values[d])]);
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (lo === hi) { lo -= 1; hi += 1; }
    return [lo, hi];
  });
  const sy = (i, v) => box.b - ((v - ranges[i][0]) / (ranges[i][1] - ranges[i][0])) * (box.b - box.t);
  ctx.strokeStyle = "#8c959f"; ctx.fillStyle = "#24292f"; ctx.textAlign = "center";
  dims.forEach((d, i) => {
    ctx.beginPath(); ctx.moveTo(xs[i], box.t); ctx.lineTo(xs[i], box.b); ctx.stroke();
    ctx.textBaseline = "bottom"; ctx.fillText(String(d).slice(0, 18), xs[i], box.t - 10);
    ctx.fillStyle = "#57606a"; ctx.textBaseline = "top";
    ctx.fillText(fmtTick(ranges[i][0]), xs[i], box.b + 4);
    ctx.textBaseline = "bottom"; ctx.fillText(fmtTick(ranges[i][1]), xs[i], box.t - 1);
    ctx.fillStyle = "#24292f";
  });
  rows.forEach((r, k) => {
    ctx.strokeStyle = r.color || PALETTE[k % PALETTE.length]; ctx.lineWidth = 1.5; ctx.beginPath();
    let pen = false;
    dims.forEach((d, i) => {
      const v = r.values[d];
      if (!isFinite(v)) { pen = false; return; }
      if (pen) ctx.lineTo(xs[i], sy(i, v)); else ctx.moveTo(xs[i], sy(i, v));
      pen = true;
    });
    ctx.stroke();
  });
  canvas.dataset.points = String(rows.length);
  return rows.length;
}
