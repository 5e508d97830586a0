// The Digit Recognizer's drawing square: white round strokes on black, sent to Python on pointer-up.
//
// Streamlit calls this function when the square mounts and again whenever its data changes (only the
// Clear button changes it, through `version`), always with the same parent element: so the listeners
// are assigned, not added, and the canvas is emptied only when the version differs from the drawn one.
export default function ({ parentElement, data, setStateValue }) {
  const canvas = parentElement.querySelector("canvas");
  if (canvas === null) {
    return;
  }
  const context = canvas.getContext("2d");
  const side = canvas.width;
  const version = String(data?.version ?? 0);
  if (canvas.dataset.version !== version) {
    context.fillStyle = "#000";
    context.fillRect(0, 0, side, side);
    canvas.dataset.version = version;
  }
  context.strokeStyle = "#fff";
  context.fillStyle = "#fff";
  context.lineWidth = Number(data?.brush ?? 20);
  context.lineCap = "round";
  context.lineJoin = "round";

  let last = null;
  // Pointer coordinates in canvas pixels, whatever size the page shows the square at.
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * side) / box.width,
      ((event.clientY - box.top) * side) / box.height,
    ];
  };
  const dot = ([x, y]) => {
    context.beginPath();
    context.arc(x, y, context.lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
  };
  const line = ([x0, y0], [x1, y1]) => {
    context.beginPath();
    context.moveTo(x0, y0);
    context.lineTo(x1, y1);
    context.stroke();
  };

  canvas.onpointerdown = (event) => {
    if (event.pointerType === "mouse" && event.button !== 0) {
      return;
    }
    event.preventDefault();
    // Capture keeps the stroke ours when the pointer leaves the square before it is lifted.
    canvas.setPointerCapture(event.pointerId);
    last = at(event);
    dot(last);
  };
  canvas.onpointermove = (event) => {
    if (last === null) {
      return;
    }
    // Coalesced events carry every sample the browser merged into this one: smooth fast strokes.
    const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const sample of samples.length ? samples : [event]) {
      const point = at(sample);
      line(last, point);
      last = point;
    }
  };
  // Sent at once on lifting the pen: a state value, so the drawing survives reruns of the page.
  const finish = () => {
    if (last === null) {
      return;
    }
    last = null;
    setStateValue("png", canvas.toDataURL("image/png"));
  };
  canvas.onpointerup = finish;
  canvas.onpointercancel = finish;
  canvas.onlostpointercapture = finish;
}
