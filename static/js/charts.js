// Draws the plotly charts of a page. Each chart is <div class="chart" data-chart="ID"> and its figure
// ({"data": [...], "layout": {...}}) is in <script id="ID" type="application/json">, written by Django's json_script.
(function () {
  "use strict";

  var BASE_LAYOUT = {
    margin: { t: 12, r: 16, b: 52, l: 64 },
    font: { family: 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif', size: 12 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#ffffff",
    hovermode: "closest",
  };
  var CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function draw(root) {
    if (typeof window.Plotly === "undefined") {
      return;
    }
    root.querySelectorAll(".chart[data-chart]").forEach(function (element) {
      var source = document.getElementById(element.dataset.chart);
      if (!source || element.dataset.drawn === "true") {
        return;
      }
      var figure = JSON.parse(source.textContent);
      var layout = Object.assign({}, BASE_LAYOUT, figure.layout || {});
      window.Plotly.newPlot(element, figure.data || [], layout, CONFIG).then(function () {
        element.dataset.drawn = "true";
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    draw(event.target);
  });
})();
