// Live progress of a job page: appends each line as it comes (Server-Sent Events), shows
// its state when a worker takes it, and reloads the page when the job is done. Without
// JavaScript the page refreshes itself.
(function () {
  var log = document.getElementById("log");
  if (!log || !window.EventSource) return;
  var source = new EventSource(log.dataset.events);
  source.addEventListener("line", function (e) {
    var li = document.createElement("li");
    li.textContent = e.data;
    log.appendChild(li);
  });
  source.addEventListener("state", function (e) {
    var state = document.getElementById("job-state");
    if (state) state.textContent = e.data;
  });
  source.addEventListener("done", function (e) {
    source.close();
    var state = document.getElementById("job-state");
    if (state) state.textContent = e.data.split(":")[0];
    window.location.reload();
  });
})();
