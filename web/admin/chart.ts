// A line chart on a canvas: the last minutes of one series, its latest value and its maximum.

export class Series {
  points: { t: number; v: number }[] = [];
  constructor(public windowMs: number) {}
  push(t: number, v: number): void {
    this.points.push({ t, v });
    while (this.points.length && this.points[0].t < t - this.windowMs) this.points.shift();
  }
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return "-";
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  if (Math.abs(v) >= 100 || Number.isInteger(v)) return v.toFixed(0);
  return v.toFixed(2);
}

export function draw(canvas: HTMLCanvasElement, series: Series, color: string): void {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const hgt = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== hgt) {
    canvas.width = w;
    canvas.height = hgt;
  }
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const cw = w / dpr;
  const ch = hgt / dpr;
  ctx.clearRect(0, 0, cw, ch);
  const pts = series.points;
  const now = pts.length ? pts[pts.length - 1].t : Date.now();
  // The x axis spans the samples so far (at least 20 s), up to the whole window.
  const span = Math.min(series.windowMs, Math.max(20_000, pts.length ? now - pts[0].t : 0));
  const max = Math.max(1e-9, ...pts.map((p) => p.v));
  const top = max * 1.1;
  // Labels above the plot: on one line, or two when the canvas is narrow.
  const narrow = cw < 260;
  const plotTop = narrow ? 36 : 22;
  const plotBottom = ch - 4;
  const plotH = Math.max(1, plotBottom - plotTop);
  ctx.strokeStyle = "#26304f";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 2; i++) {
    const y = plotTop + (plotH * i) / 2;
    ctx.beginPath();
    ctx.moveTo(0, y);
    ctx.lineTo(cw, y);
    ctx.stroke();
  }
  if (pts.length >= 2) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    pts.forEach((p, i) => {
      const x = cw - ((now - p.t) / span) * cw;
      const y = plotBottom - (p.v / top) * plotH;
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
  ctx.fillStyle = "#dfe6f3";
  ctx.font = "12px system-ui, sans-serif";
  const last = pts.length ? pts[pts.length - 1].v : NaN;
  ctx.fillText(`now ${fmt(last)}`, 6, 14);
  ctx.fillStyle = "#8c98b8";
  const spanText = span < 60_000 ? `${Math.round(span / 1000)} s` : `${Math.round(span / 60_000)} min`;
  const right = `max ${pts.length ? fmt(max) : "-"} · last ${spanText}`;
  if (narrow) {
    ctx.fillText(right, 6, 28);
  } else {
    ctx.textAlign = "right";
    ctx.fillText(right, cw - 6, 14);
  }
  ctx.textAlign = "left";
}
