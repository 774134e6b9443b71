// A small hand-written canvas line chart: no library, no build step.
// Usage: const c = new LineChart(canvas, {min: 0, max: 1, format: v => ..., maxPoints: 300});
//        c.push(timeSeconds, value); c.setData([[t, v], ...]);
// The canvas carries data-points="<n>" so tests and people can see that it gains points.

const DEFAULTS = {
  min: null, // null: take the data minimum
  max: null, // null: take the data maximum
  maxPoints: 300,
  color: "#4ea1ff",
  fill: "rgba(78, 161, 255, 0.12)",
  grid: "rgba(139, 152, 169, 0.18)",
  text: "#8b98a9",
  format: (v) => String(Math.round(v * 100) / 100),
  empty: "waiting for data",
};

export class LineChart {
  constructor(canvas, options = {}) {
    this.canvas = canvas;
    this.opt = { ...DEFAULTS, ...options };
    this.points = []; // [[t seconds, value | null], ...]
    this._pending = false;
    if (typeof ResizeObserver !== "undefined") {
      this._ro = new ResizeObserver(() => this.draw());
      this._ro.observe(canvas);
    }
    this._mark();
    this.draw();
  }

  push(t, v) {
    this.points.push([t, Number.isFinite(v) ? v : null]);
    if (this.points.length > this.opt.maxPoints) {
      this.points.splice(0, this.points.length - this.opt.maxPoints);
    }
    this._mark();
    this.requestDraw();
  }

  setData(points) {
    this.points = points
      .filter((p) => Number.isFinite(p[0]))
      .map((p) => [p[0], Number.isFinite(p[1]) ? p[1] : null])
      .slice(-this.opt.maxPoints);
    this._mark();
    this.requestDraw();
  }

  _mark() {
    this.canvas.dataset.points = String(this.points.length);
  }

  requestDraw() {
    if (this._pending) return;
    this._pending = true;
    requestAnimationFrame(() => {
      this._pending = false;
      this.draw();
    });
  }

  draw() {
    const canvas = this.canvas;
    const cssW = canvas.clientWidth || 300;
    const cssH = canvas.clientHeight || 140;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(cssW * dpr);
      canvas.height = Math.round(cssH * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.font = "11px system-ui, sans-serif";

    const values = this.points.map((p) => p[1]).filter((v) => v !== null);
    const padL = 46, padR = 10, padT = 20, padB = 20;
    const w = Math.max(10, cssW - padL - padR);
    const h = Math.max(10, cssH - padT - padB);

    let lo = this.opt.min ?? (values.length ? Math.min(...values) : 0);
    let hi = this.opt.max ?? (values.length ? Math.max(...values) : 1);
    if (this.opt.max === null && values.length) hi = Math.max(hi, lo + 1e-9) * 1.1;
    if (hi <= lo) hi = lo + 1;

    // Grid and y labels (4 bands).
    ctx.strokeStyle = this.opt.grid;
    ctx.fillStyle = this.opt.text;
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const y = padT + (h * i) / 4;
      ctx.beginPath();
      ctx.moveTo(padL, Math.round(y) + 0.5);
      ctx.lineTo(padL + w, Math.round(y) + 0.5);
      ctx.stroke();
      if (values.length) ctx.fillText(this.opt.format(hi - ((hi - lo) * i) / 4), padL - 6, y);
    }

    if (this.points.length === 0) {
      ctx.textAlign = "center";
      ctx.fillText(this.opt.empty, padL + w / 2, padT + h / 2);
      return;
    }

    const t0 = this.points[0][0];
    const t1 = this.points[this.points.length - 1][0];
    const span = Math.max(t1 - t0, 1e-9);
    const xOf = (t) => (this.points.length === 1 ? padL + w : padL + ((t - t0) / span) * w);
    const yOf = (v) => padT + h - ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * h;

    // X labels: first and last time.
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    ctx.fillText(clock(t0), padL, padT + h + 5);
    ctx.textAlign = "right";
    ctx.fillText(clock(t1), padL + w, padT + h + 5);

    // Line segments (a null value breaks the line), then the fill under each segment.
    const segments = [];
    let seg = [];
    for (const [t, v] of this.points) {
      if (v === null) {
        if (seg.length) segments.push(seg);
        seg = [];
      } else {
        seg.push([xOf(t), yOf(v)]);
      }
    }
    if (seg.length) segments.push(seg);

    for (const s of segments) {
      ctx.beginPath();
      ctx.moveTo(s[0][0], padT + h);
      for (const [x, y] of s) ctx.lineTo(x, y);
      ctx.lineTo(s[s.length - 1][0], padT + h);
      ctx.closePath();
      ctx.fillStyle = this.opt.fill;
      ctx.fill();

      ctx.beginPath();
      s.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.strokeStyle = this.opt.color;
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.stroke();
      if (s.length === 1) {
        ctx.fillStyle = this.opt.color;
        ctx.beginPath();
        ctx.arc(s[0][0], s[0][1], 2.5, 0, Math.PI * 2);
        ctx.fill();
      }
    }

    // Last value, top right.
    const last = [...this.points].reverse().find((p) => p[1] !== null);
    if (last) {
      ctx.textAlign = "right";
      ctx.textBaseline = "top";
      ctx.fillStyle = this.opt.color;
      ctx.font = "600 12px system-ui, sans-serif";
      ctx.fillText(this.opt.format(last[1]), padL + w, 3);
    }
  }
}

function clock(t) {
  const d = new Date(t * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
