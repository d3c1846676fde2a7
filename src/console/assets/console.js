// Latchkey console: live updates and deadline countdowns. Server-sent events from
// /ui/events become an "lk-change" event on <body>; the regions that show live state
// (the pending inbox, the header's count) ask htmx to fetch themselves again.
(function () {
  "use strict";
  function left(s) {
    if (s <= 0) return "deadline passed";
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = s % 60;
    return (h ? h + "h " : "") + (h || m ? m + "m " : "") + x + "s left";
  }
  function tick() {
    var now = Math.floor(Date.now() / 1000);
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      el.textContent = left(Number(el.getAttribute("data-deadline")) - now);
    });
  }
  tick();
  setInterval(tick, 1000);
  document.body.addEventListener("htmx:afterSwap", tick);
  if (document.body.getAttribute("data-live") && window.EventSource) {
    var es = new EventSource("/ui/events");
    es.addEventListener("change", function () {
      if (window.htmx) window.htmx.trigger(document.body, "lk-change");
    });
    // A dropped stream reconnects by itself; refresh once it is back, in case of a miss.
    es.addEventListener("open", function () {
      if (window.htmx) window.htmx.trigger(document.body, "lk-change");
    });
  }
})();
