// Drag across the equity chart to zoom into that time range: the page reloads with ?from=...&to=... (UTC), which
// the server reads at full resolution for that range. Escape cancels a drag. The range form and the range links
// do the same from the keyboard. No framework and no build step.
(function () {
  "use strict";
  var SVG_NS = "http://www.w3.org/2000/svg";
  var drag = null;

  function chartOf(target) {
    return target && target.closest ? target.closest("#equity-chart") : null;
  }

  function viewX(svg, clientX) {
    var box = svg.getBoundingClientRect();
    var width = svg.viewBox.baseVal.width;
    return Math.min(Math.max((clientX - box.left) / box.width * width, 0), width);
  }

  function timeAt(svg, x) {
    var pad = Number(svg.dataset.pad);
    var width = svg.viewBox.baseVal.width;
    var start = Date.parse(svg.dataset.start);
    var end = Date.parse(svg.dataset.end);
    var fraction = Math.min(Math.max((x - pad) / (width - 2 * pad), 0), 1);
    return new Date(start + fraction * (end - start));
  }

  function stop() {
    if (drag) { drag.band.remove(); }
    drag = null;
  }

  document.addEventListener("pointerdown", function (event) {
    var svg = chartOf(event.target);
    if (!svg || event.button !== 0 || svg.dataset.start === svg.dataset.end) { return; }
    var band = document.createElementNS(SVG_NS, "rect");
    var origin = viewX(svg, event.clientX);
    band.setAttribute("class", "zoom-band");
    band.setAttribute("x", origin);
    band.setAttribute("y", 0);
    band.setAttribute("width", 0);
    band.setAttribute("height", svg.viewBox.baseVal.height);
    svg.appendChild(band);
    drag = { svg: svg, band: band, origin: origin };
    event.preventDefault();
  });

  document.addEventListener("pointermove", function (event) {
    if (!drag) { return; }
    var x = viewX(drag.svg, event.clientX);
    drag.band.setAttribute("x", Math.min(x, drag.origin));
    drag.band.setAttribute("width", Math.abs(x - drag.origin));
  });

  document.addEventListener("pointerup", function (event) {
    if (!drag) { return; }
    var svg = drag.svg;
    var x = viewX(svg, event.clientX);
    var left = Math.min(x, drag.origin);
    var right = Math.max(x, drag.origin);
    stop();
    if (right - left < 4) { return; }  // a click, not a drag
    var params = new URLSearchParams();
    params.set("from", timeAt(svg, left).toISOString());
    params.set("to", timeAt(svg, right).toISOString());
    window.location.assign(window.location.pathname + "?" + params.toString() + "#equity-heading");
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { stop(); }
  });
})();
