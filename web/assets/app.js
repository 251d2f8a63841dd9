// toolgate web UI. Loaded from /ui/assets (CSP script-src 'self'; no
// inline scripts). uPlot draws the charts.
(function () {
  "use strict";

  // Live review queue: the server sends a "reviews" event whenever the set
  // of pending reviews changes, and the queue is fetched again. Nothing
  // moves under the pointer or the keyboard focus: while either is inside
  // the queue and it shows a review, a review that left stays where it was,
  // inert and marked closed, and new ones are added at the end (the queue
  // is oldest first). A click aimed at one review can so never land on
  // another that slid into its place. The queue is drawn whole again once
  // pointer and focus have left it.
  function liveQueue() {
    var q = document.getElementById("queue");
    if (!q || !window.EventSource || !window.fetch) return;
    var pending = null; // the newest queue not yet drawn whole
    function busy() {
      return (q.matches(":hover") || q.contains(document.activeElement)) &&
        q.querySelector("article.pending:not(.closed)") !== null;
    }
    function drawWhole() {
      if (pending === null || busy()) return;
      q.innerHTML = pending;
      pending = null;
    }
    function merge(html) {
      var next = document.createElement("div");
      next.innerHTML = html;
      var fresh = {};
      next.querySelectorAll("article.pending").forEach(function (a) { fresh[a.id] = a; });
      q.querySelectorAll("article.pending").forEach(function (a) {
        if (fresh[a.id]) {
          delete fresh[a.id];
          return;
        }
        a.classList.add("closed");
        a.setAttribute("aria-disabled", "true");
        a.querySelectorAll("button, input").forEach(function (el) { el.disabled = true; });
      });
      next.querySelectorAll("article.pending").forEach(function (a) {
        if (fresh[a.id]) q.appendChild(a);
      });
    }
    function reload() {
      fetch("/ui/reviews/queue", { credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) throw new Error(r.status);
          return r.text();
        })
        .then(function (html) {
          pending = html;
          if (busy()) merge(html);
          else drawWhole();
        })
        .catch(function () { /* the next event fetches again */ });
    }
    q.addEventListener("pointerleave", function () { setTimeout(drawWhole, 0); });
    q.addEventListener("focusout", function () { setTimeout(drawWhole, 0); });
    var es = new EventSource("/ui/events?have=" + encodeURIComponent(q.getAttribute("data-have") || ""));
    es.addEventListener("reviews", reload);
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
