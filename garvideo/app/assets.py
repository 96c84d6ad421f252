"""The page's own script and style: the frame panel's mouse handling and the two-column layout."""

from __future__ import annotations

# The frame panel: the user drags a box or clicks; the page reports positions in the video's pixels.
# The <img> is sized by the page and shows the frame letterboxed (object-fit: contain) when their shapes
# differ, so positions are mapped through the picture's own rectangle inside it, never the panel's width.
# getBoundingClientRect and the mouse's clientX/Y are both CSS pixels, whatever the zoom or pixel ratio.
FRAME_JS = """
let start = null;
const img = () => element.querySelector('img.gv-img');
const band = () => element.querySelector('.gv-band');
function picture(im) {
  const r = im.getBoundingClientRect(), stage = im.parentElement;
  const W = Number(stage.dataset.w), H = Number(stage.dataset.h);
  const scale = Math.min(r.width / W, r.height / H);
  const w = W * scale, h = H * scale;
  return {left: r.left + (r.width - w) / 2, top: r.top + (r.height - h) / 2, w: w, h: h, W: W, H: H};
}
function where(e) {
  const p = picture(img());
  const cx = Math.min(Math.max(e.clientX - p.left, 0), p.w), cy = Math.min(Math.max(e.clientY - p.top, 0), p.h);
  return {cx: cx, cy: cy, x: Math.round(cx / p.w * p.W), y: Math.round(cy / p.h * p.H), p: p};
}
function onPicture(e) {
  if (!e.target.classList || !e.target.classList.contains('gv-img')) return false;
  const p = picture(e.target);
  return e.clientX >= p.left && e.clientX <= p.left + p.w && e.clientY >= p.top && e.clientY <= p.top + p.h;
}
element.addEventListener('mousedown', (e) => {
  if (e.button !== 0 || !onPicture(e)) return;
  e.preventDefault(); start = where(e); start.shift = e.shiftKey;
});
element.addEventListener('contextmenu', (e) => {
  if (!onPicture(e)) return;
  e.preventDefault(); const p = where(e); trigger('point', {x: p.x, y: p.y, background: true});
});
window.addEventListener('mousemove', (e) => {
  if (!start || !img()) return;
  const p = where(e), b = band(), stage = img().parentElement.getBoundingClientRect();
  b.style.display = 'block';
  b.style.left = (p.p.left - stage.left + Math.min(start.cx, p.cx)) + 'px';
  b.style.top = (p.p.top - stage.top + Math.min(start.cy, p.cy)) + 'px';
  b.style.width = Math.abs(p.cx - start.cx) + 'px';
  b.style.height = Math.abs(p.cy - start.cy) + 'px';
});
window.addEventListener('mouseup', (e) => {
  if (!start || !img()) { start = null; return; }
  const p = where(e), s = start; start = null; band().style.display = 'none';
  if (Math.abs(p.cx - s.cx) >= 4 && Math.abs(p.cy - s.cy) >= 4) {
    trigger('box', {box: [Math.min(s.x, p.x), Math.min(s.y, p.y), Math.max(s.x, p.x), Math.max(s.y, p.y)]});
  } else {
    trigger('point', {x: p.x, y: p.y, background: s.shift || e.shiftKey});
  }
});
"""

# The strip of tracked frames: a click on one goes to its frame.
STRIP_JS = """
element.addEventListener('click', (e) => {
  const figure = e.target.closest && e.target.closest('figure.gv-thumb');
  if (figure) trigger('pick', {frame: Number(figure.dataset.frame)});
});
"""

# The live picture (after FRAME_JS, whose marks it shares): it asks for the next frame once the last one is on
# screen (decoded), so frames come as fast as tracking gives them and never faster than this browser draws them;
# the server keeps only the newest frame, so nothing queues. A request lost on the way is asked again.
LIVE_JS = """
let askedAt = 0;
function askNext() {
  const stage = element.querySelector('.gv-stage');
  if (!stage || stage.dataset.state === 'stopped') return;
  askedAt = Date.now();
  trigger('next', {after: Number(stage.dataset.seq)});
}
new MutationObserver(() => {
  const im = element.querySelector('img.gv-img');
  if (im && !im.complete) im.decode().then(askNext, askNext); else askNext();
}).observe(element, {childList: true, subtree: true, attributeFilter: ['data-tick']});  // updates are patched in
setInterval(() => { if (Date.now() - askedAt > 5000) askNext(); }, 1000);
"""

# A timeline window or a thumbnail was clicked: bring the frame into view (on a narrow window the columns stack).
SCROLL_TO_FRAME = "() => { document.querySelector('#gv-frame')?.scrollIntoView({block: 'nearest'}); }"

CSS = """
.gradio-container { overflow: clip !important; }  /* 'hidden' would keep the frame's column from sticking */
#gv-columns { align-items: flex-start; }
#gv-left, #gv-live-left { position: sticky; top: 0; align-self: flex-start; }
#gv-live-columns { align-items: flex-start; }
:is(#gv-frame, #gv-live-frame) .gv-stage { position: relative; display: block; width: 100%; line-height: 0; }
:is(#gv-frame, #gv-live-frame) img.gv-img { display: block; width: 100%; height: auto; max-height: max(200px, calc(100vh - 420px));
  object-fit: contain; margin: 0; padding: 0; border: 0; cursor: crosshair; user-select: none;
  -webkit-user-drag: none; background: #111; }
:is(#gv-frame, #gv-live-frame) .gv-band { position: absolute; display: none; border: 2px dashed #fff; outline: 1px solid #000;
  pointer-events: none; box-sizing: border-box; }
:is(#gv-frame, #gv-live-frame) .gv-empty { padding: 3em 1em; text-align: center; color: #888; border: 1px dashed #aaa;
  border-radius: 6px; line-height: 1.4; }
.gv-strip { display: flex; gap: 4px; overflow-x: auto; padding: 4px 0; }
.gv-thumb { margin: 0; flex: 1 1 0; min-width: 0; max-width: 140px; cursor: pointer; text-align: center;
  font-size: 0.7em; line-height: 1.2; }
.gv-thumb img { display: block; width: 100%; height: auto; border-radius: 3px; }
.gv-thumb:hover img { outline: 2px solid #0b5394; }
.gv-swatch { display: inline-block; width: 0.9em; height: 0.9em; border-radius: 2px; margin-right: 0.4em;
  vertical-align: -0.1em; border: 1px solid rgba(0, 0, 0, 0.4); }
.gv-table { width: 100%; border-collapse: collapse; font-size: 0.9em; }
.gv-table th, .gv-table td { text-align: left; padding: 2px 6px; border-bottom: 1px solid rgba(128, 128, 128, 0.3);
  overflow-wrap: anywhere; }
.gv-status { min-height: 1.6em; padding: 2px 8px; font-size: 0.9em; display: flex; gap: 0.6em; align-items: center; }
.gv-status progress { width: 9em; }
.gv-status.gv-error { color: #b00020; background: rgba(176, 0, 32, 0.08); }
.gv-status.gv-warning { color: #8a5a00; background: rgba(255, 170, 0, 0.12); }
.gv-status.gv-busy { color: #0b5394; }
.gv-status.gv-done { color: #2e7d32; }
.gv-where { padding: 2px 4px; }
.gv-live { color: #0b5394; }
.gv-description, .gv-turn { padding: 4px 6px; overflow-wrap: anywhere; white-space: pre-wrap; }
.gv-turn { border-left: 3px solid rgba(128, 128, 128, 0.4); margin: 4px 0; }
.gv-question { font-weight: 600; }
.gv-command { font-size: 0.8em; white-space: pre-wrap; margin: 2px 0; }
.gv-none { color: #888; padding: 4px 6px; }
#gv-live-texts { max-height: 18em; overflow-y: auto; }
.gv-log { max-height: 10em; overflow-y: auto; font-size: 0.85em; padding: 2px 4px; }
.gv-log-line { overflow-wrap: anywhere; }
.gv-log-time { color: #888; font-family: monospace; }
.gv-log-error, .gv-log-gap, .gv-log-behind, .gv-log-lost { color: #b00020; }
.gv-last { font-weight: normal; color: #888; }
.gv-error { color: #b00020; }
"""
