// toolgate web UI. Loaded from /ui/assets (CSP script-src 'self'; no
// inline scripts). uPlot draws the charts.
(function () {
  "use strict";

  // The review queue. Nothing in it moves under the reviewer's pointer or
  // keyboard focus, so a click aimed at one review can never land on
  // another that slid into its place (an agent can cancel and resend its
  // calls to try). A review that leaves while the pointer or focus is in
  // the queue stays where it was, inert and marked closed, and new ones are
  // added at the end (the queue is oldest first); the queue is drawn whole
  // again once pointer and focus have left it. Answers are sent from the
  // page, without a reload, which would move every review below the
  // answered one up under the pointer: the answered review closes in
  // place, and the server's message shows over the page, taking no space.
  function reviewQueue() {
    var q = document.getElementById("queue");
    if (!q || !window.fetch) return;
    var pending = null; // the newest queue not yet drawn whole
    function busy() {
      return q.matches(":hover") || q.contains(document.activeElement);
    }
    function drawWhole() {
      if (pending === null || busy()) return;
      q.innerHTML = pending;
      pending = null;
    }
    function inert(a, on) {
      a.querySelectorAll("button, input").forEach(function (el) { el.disabled = on; });
    }
    function close(a) {
      a.classList.add("closed");
      a.setAttribute("aria-disabled", "true");
      inert(a, true);
    }
    function merge(html) {
      var next = document.createElement("div");
      next.innerHTML = html;
      var fresh = {}, added = false;
      next.querySelectorAll("article.pending").forEach(function (a) { fresh[a.id] = a; });
      q.querySelectorAll("article.pending").forEach(function (a) {
        if (fresh[a.id]) delete fresh[a.id];
        else close(a);
      });
      next.querySelectorAll("article.pending").forEach(function (a) {
        if (fresh[a.id]) {
          q.appendChild(a);
          added = true;
        }
      });
      var empty = document.getElementById("queue-empty");
      if (added && empty) empty.hidden = true;
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
    q.addEventListener("submit", function (e) {
      // getAttribute: form.action is the form's control named "action".
      var form = e.target, a = form.closest("article.pending");
      if (!a || !window.FormData || !window.DOMParser) return; // the form posts, and the page reloads
      e.preventDefault();
      var data = new FormData(form);
      if (e.submitter && e.submitter.name) data.append(e.submitter.name, e.submitter.value);
      inert(a, true); // one answer at a time
      fetch(form.getAttribute("action"), { method: "POST", body: new URLSearchParams(data), credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var f = page.getElementById("flash");
          note(f ? f.textContent : "The answer got no reply.");
          if (f && f.getAttribute("data-closed") === a.getAttribute("data-id")) close(a);
          else inert(a, false); // still waiting: refused, or waiting for a second approver
        })
        .catch(function (err) {
          note("Your answer was not sent: " + err);
          inert(a, false);
        });
    });
    if (window.EventSource) {
      var es = new EventSource("/ui/events?have=" + encodeURIComponent(q.getAttribute("data-have") || ""));
      es.addEventListener("reviews", reload);
    }
  }

  // note shows msg in the page's message, over the page: it takes no
  // space, so nothing moves when it comes or goes; a click on it hides it.
  function note(msg) {
    var f = document.getElementById("flash");
    if (!f) {
      f = document.createElement("p");
      f.id = "flash";
      f.className = "flash";
      f.setAttribute("role", "status");
      document.body.appendChild(f);
    }
    f.textContent = msg;
    f.hidden = false;
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
    reviewQueue();
    var f = document.getElementById("flash");
    if (f) f.addEventListener("click", function () { f.hidden = true; });
    dashboard();
    ruleTimeline();
  });
})();
