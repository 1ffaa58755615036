// Paint a poll's grid by dragging over it with a mouse or a finger: the first cell touched
// decides whether the stroke marks or clears, and the answers are saved when the stroke ends.
// Without this script the checkboxes and the save button do the same; with it, the keyboard
// still works on the checkboxes (space ticks, and the save button saves).
(function () {
  var tz = document.querySelector("[data-local-tz]");
  if (tz && window.Intl) {
    try { tz.value = Intl.DateTimeFormat().resolvedOptions().timeZone || tz.value; } catch (e) {}
  }
  var form = document.getElementById("grid");
  if (!form || !form.querySelector("input[name=slot]")) return;
  var painting = null;
  function box(el) {
    var td = el && el.closest ? el.closest("td") : null;
    return td ? td.querySelector("input[name=slot]") : null;
  }
  function save() {
    var status = document.getElementById("save");
    fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)), credentials: "same-origin" })
      .then(function (r) { if (status) status.textContent = r.ok ? "Saved" : "Not saved: try the button"; })
      .catch(function () { if (status) status.textContent = "Not saved: try the button"; });
  }
  form.addEventListener("pointerdown", function (e) {
    var b = box(e.target);
    if (!b) return;
    e.preventDefault();
    painting = !b.checked;
    b.checked = painting;
    form.setPointerCapture && e.pointerId !== undefined && form.setPointerCapture(e.pointerId);
  });
  form.addEventListener("pointermove", function (e) {
    if (painting === null) return;
    var b = box(document.elementFromPoint(e.clientX, e.clientY));
    if (b) b.checked = painting;
  });
  function end() { if (painting !== null) { painting = null; save(); } }
  form.addEventListener("pointerup", end);
  form.addEventListener("pointercancel", end);
  // A click that the pointer handler already applied must not undo it.
  form.addEventListener("click", function (e) { if (box(e.target) && e.target.name === "slot" && e.detail > 0) e.preventDefault(); });
  form.addEventListener("change", function () { var s = document.getElementById("save"); if (s) s.textContent = "Save my times"; });
})();
