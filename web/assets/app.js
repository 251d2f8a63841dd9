// toolgate web UI. Loaded from /ui/assets (CSP script-src 'self'; no
// inline scripts). htmx swaps the review queue; uPlot draws the charts.
(function () {
  "use strict";

  // Live review queue: the server sends a "reviews" event whenever the set
  // of pending reviews changes; the queue section (hx-trigger
  // "reviews-changed from:body") then reloads itself.
  function liveQueue() {
    var q = document.getElementById("queue");
    if (!q || !window.EventSource) return;
    var es = new EventSource("/ui/events?have=" + encodeURIComponent(q.getAttribute("data-have") || ""));
    es.addEventListener("reviews", function () {
      htmx.trigger(document.body, "reviews-changed");
    });
  }

  function width(el) {
    return Math.max(320, Math.min(el.clientWidth || 600, 900));
  }

  function plot(el, title, series, data) {
    if (!el || data[0].length === 0) {
      if (el) el.textContent = "no calls in this window";
      return;
    }
    var opts = {
      title: title, width: width(el), height: 240,
      scales: { x: { time: true } },
      series: [{}].concat(series),
    };
    new uPlot(opts, data, el);
  }

  function dashboard() {
    var vol = document.getElementById("chart-volume");
    if (!vol) return;
    fetch("/ui/api/stats" + window.location.search, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (rep) {
        var s = rep.series || [];
        var x = s.map(function (p) { return Date.parse(p.start) / 1000; });
        var col = function (f) { return s.map(f); };
        var bars = uPlot.paths.bars({ size: [0.6, 40] });
        plot(vol, "", [
          { label: "allow", stroke: "#2b8a3e", fill: "rgba(43,138,62,0.25)", paths: bars },
          { label: "review", stroke: "#e67700", fill: "rgba(230,119,0,0.25)", paths: bars },
          { label: "deny", stroke: "#c92a2a", fill: "rgba(201,42,42,0.25)", paths: bars },
          { label: "auto-approved", stroke: "#1971c2" },
        ], [x, col(function (p) { return p.allow; }), col(function (p) { return p.review; }),
          col(function (p) { return p.deny; }), col(function (p) { return p.auto_approved; })]);
        var sec = function (ns) { return ns ? ns / 1e9 : null; };
        plot(document.getElementById("chart-tta"), "", [
          { label: "p50", stroke: "#1971c2", points: { show: true } },
          { label: "p90", stroke: "#862e9c", points: { show: true } },
        ], [x, col(function (p) { return sec(p.time_to_approval.p50); }),
          col(function (p) { return sec(p.time_to_approval.p90); })]);
        document.body.setAttribute("data-charts", "drawn");
      })
      .catch(function (e) { vol.textContent = "charts unavailable: " + e; });
  }

  // Rule versions: each version's calls at its first use, on a time axis.
  function ruleTimeline() {
    var el = document.getElementById("chart-rules");
    if (!el) return;
    var items = Array.prototype.slice.call(document.querySelectorAll("#rule-versions li[data-first]"));
    var x = [], y = [];
    items.forEach(function (li, i) {
      x.push(Number(li.getAttribute("data-first")));
      y.push(i + 1);
    });
    plot(el, "", [{ label: "rule-set version (order of first use)", stroke: "#1971c2", points: { show: true, size: 8 } }], [x, y]);
  }

  document.addEventListener("DOMContentLoaded", function () {
    liveQueue();
    dashboard();
    ruleTimeline();
  });
})();
