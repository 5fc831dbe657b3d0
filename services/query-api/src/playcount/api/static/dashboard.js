// Playcount dashboard: polls the API and draws with Chart.js (vendored, no build step).
// Each chart card gets data-rendered="true" once it has drawn data from the API (the browser
// test waits on these), and <body data-ready> lists the cards rendered so far.
"use strict";

const STATUS_EVERY_MS = 2000;
const DAY_EVERY_MS = 15000;
const FRESHNESS_ALONE_S = 120;  // one measurement: two minutes around it
const SAMPLES_ALONE_S = 10;  // one status sample, just after the API started
const CLOCK_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

const state = { day: null, genre: null };

// ---- the API key (pages.js) ---------------------------------------------------------------

onKeyEntered(() => {
  refreshStatus();
  refreshDays();
});

// ---- helpers --------------------------------------------------------------------------------

function rendered(cardId) {
  const card = $(cardId);
  if (card.dataset.rendered === "true") return;
  card.dataset.rendered = "true";
  const ready = new Set((document.body.dataset.ready || "").split(" ").filter(Boolean));
  ready.add(cardId.replace("card-", ""));
  document.body.dataset.ready = [...ready].sort().join(" ");
}

function showEmpty(cardId, empty) {
  const note = $(cardId).querySelector(".empty");
  if (note) note.hidden = !empty;
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString("en-GB", { hour12: false });
}

// Python writes microseconds; keep milliseconds, which every Date parser reads. NaN when unreadable.
function isoMillis(iso) {
  return iso ? Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1")) : NaN;
}

// "14:03:22 UTC" today, "2025-06-24 14:03 UTC" another day
function utcTime(ms) {
  const text = new Date(ms).toISOString();
  const today = new Date().toISOString().slice(0, 10);
  return text.slice(0, 10) === today ? `${text.slice(11, 19)} UTC` : `${text.slice(0, 10)} ${text.slice(11, 16)} UTC`;
}

function ago(ms) {
  const seconds = Math.max(0, (Date.now() - ms) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

// What a reader sees of a result's version is when it was computed; the raw version, a large
// counter, is in the tooltip only. Without `computed_at` (an older API), nothing is shown.
function computed(version, iso) {
  const ms = isoMillis(iso);
  const title = `version ${version}` + (iso ? ` · computed at ${iso}` : "");
  if (Number.isNaN(ms)) return { text: "", relative: "", title };
  return { text: `computed ${utcTime(ms)}`, relative: ago(ms), title };
}

function duration(ms) {
  const minutes = ms / 60000;
  if (minutes < 120) return `${minutes.toFixed(1)} min`;
  return `${(minutes / 60).toFixed(1)} h`;
}

function lag(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`;
}

function shortQueue(name) {
  for (const stage of ["s3-events", "validated", "kpi-results"]) if (name.endsWith(stage)) return stage;
  return name;
}

// Ticks on round clock times (every 10 s, 1 min, 15 min, ...), at most `most` of them, aligned on
// the local clock as the labels are
function clockTicks(min, max, most = 6) {
  if (!Number.isFinite(min) || !Number.isFinite(max) || max < min) return [];
  const step = CLOCK_STEPS_S.find((s) => (max - min) / s <= most) || Math.ceil((max - min) / most / 86400) * 86400;
  const offset = -new Date(min * 1000).getTimezoneOffset() * 60;
  const ticks = [];
  for (let v = Math.ceil((min + offset) / step) * step - offset; v <= max; v += step) ticks.push({ value: v });
  return ticks;
}

function timeAxis() {
  return {
    type: "linear",
    afterBuildTicks: (axis) => { axis.ticks = clockTicks(axis.min, axis.max); },
    ticks: { callback: (v) => clock(v), maxRotation: 0 },
    grid: { display: false },
  };
}

// Left to itself, Chart.js widens the range of a single point by 5 % of its value, which for epoch
// seconds is years. The x range is the points' own, `pad` of it wider either side; one point alone
// gets `alone` seconds around it, points closer than `least` seconds get `least`.
function fitTime(chart, xs, { alone, least = 0, pad = 0 }) {
  const scale = chart.options.scales.x;
  if (!xs.length) { delete scale.min; delete scale.max; return; }
  let lo = Math.min(...xs), hi = Math.max(...xs);
  const span = hi === lo ? alone : Math.max(hi - lo, least);
  if (span > hi - lo) { const mid = (lo + hi) / 2; lo = mid - span / 2; hi = mid + span / 2; }
  const margin = (hi - lo) * pad;
  scale.min = lo - margin;
  scale.max = hi + margin;
}

function line(label, color, fill = false) {
  return {
    label, borderColor: color, backgroundColor: fill ? color + "33" : color, fill,
    data: [], cubicInterpolationMode: "monotone", pointRadius: 0, borderWidth: 2,
  };
}

// ---- charts ---------------------------------------------------------------------------------

const charts = {};

function makeCharts() {
  charts.files = new Chart($("chart-files"), {
    type: "line",
    data: { datasets: [line("received", COLORS.indigo), line("processed", COLORS.green, true), line("rejected", COLORS.rose, true)] },
    options: {
      animation: false, parsing: false, interaction: { mode: "index", intersect: false },
      scales: { x: timeAxis(), y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { tooltip: { callbacks: { title: (items) => clock(items[0].parsed.x) } } },
    },
  });
  charts.backlog = new Chart($("chart-backlog"), {
    type: "line",
    data: { datasets: [line("backlog", COLORS.amber, true), line("dead letters", COLORS.rose)] },
    options: {
      animation: false, parsing: false, interaction: { mode: "index", intersect: false },
      scales: { x: timeAxis(), y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { tooltip: { callbacks: { title: (items) => clock(items[0].parsed.x) } } },
    },
  });
  charts.freshness = new Chart($("chart-freshness"), {
    type: "line",
    data: { datasets: [{ ...line("lag (s)", COLORS.sky, true), pointRadius: 3, stepped: false }] },
    options: {
      animation: false, parsing: false,
      scales: { x: timeAxis(), y: { beginAtZero: true, title: { display: true, text: "seconds" } } },
      plugins: { legend: { display: false }, tooltip: { callbacks: { title: (items) => clock(items[0].parsed.x) } } },
    },
  });
  charts.queues = new Chart($("chart-queues"), {
    type: "bar",
    data: {
      labels: [],
      datasets: [
        { label: "visible", data: [], backgroundColor: COLORS.indigo, stack: "q", borderRadius: 4 },
        { label: "in flight", data: [], backgroundColor: COLORS.sky, stack: "q", borderRadius: 4 },
        { label: "dead letters", data: [], backgroundColor: COLORS.rose, stack: "dlq", borderRadius: 4 },
      ],
    },
    options: {
      indexAxis: "y", animation: { duration: 300 },
      scales: { x: { beginAtZero: true, ticks: { precision: 0 }, suggestedMax: 5 }, y: { grid: { display: false } } },
    },
  });
  charts.genres = new Chart($("chart-genres"), {
    type: "bar",
    data: { labels: [], datasets: [{ label: "listens", data: [], backgroundColor: [], borderRadius: 6 }] },
    options: {
      indexAxis: "y",
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } }, y: { grid: { display: false } } },
      plugins: { legend: { display: false } },
      onClick: (_event, elements) => {
        if (elements.length) selectGenre(charts.genres.data.labels[elements[0].index]);
      },
    },
  });
  charts.hours = new Chart($("chart-hours"), {
    data: {
      labels: [...Array(24).keys()].map((h) => `${String(h).padStart(2, "0")}:00`),
      datasets: [
        { type: "bar", label: "listens", data: [], backgroundColor: COLORS.violet + "cc", borderRadius: 4, yAxisID: "y" },
        { type: "line", label: "unique listeners", data: [], borderColor: COLORS.green, backgroundColor: COLORS.green,
          cubicInterpolationMode: "monotone", pointRadius: 2, borderWidth: 2, yAxisID: "y2" },
      ],
    },
    options: {
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 12 } },
        y: { beginAtZero: true, title: { display: true, text: "listens" }, ticks: { precision: 0 } },
        y2: { beginAtZero: true, position: "right", grid: { display: false }, title: { display: true, text: "listeners" },
              ticks: { precision: 0 } },
      },
    },
  });
}

// ---- pipeline -------------------------------------------------------------------------------

function setPill(status) {
  const pill = $("pill");
  if (!status) { pill.className = "pill pill-down"; pill.textContent = "API unreachable"; return; }
  if (status.dlq_total > 0) {
    pill.className = "pill pill-dlq";
    pill.textContent = `${status.dlq_total} dead letter${status.dlq_total === 1 ? "" : "s"}`;
  }
  else if (status.idle) { pill.className = "pill pill-idle"; pill.textContent = "idle"; }
  else { pill.className = "pill pill-busy"; pill.textContent = `working · ${status.backlog} queued`; }
}

function showStatus(s) {
  $("t-received").textContent = fmt.format(s.files_received);
  $("t-processed").textContent = fmt.format(s.files_processed);
  $("t-rejected").textContent = fmt.format(s.files_rejected);
  $("t-rows-q").textContent = `${fmt.format(s.rows_quarantined)} rows quarantined`;
  $("t-rows").textContent = fmt.format(s.rows_accepted);
  $("t-backlog").textContent = fmt.format(s.backlog);
  $("t-dlq").textContent = fmt.format(s.dlq_total);
  $("t-fresh").textContent = lag(s.freshness_lag_seconds);
  setPill(s);
  $("updated").textContent = `updated ${clock(s.checked_at)}`;

  const q = charts.queues;
  q.data.labels = s.queues.map((x) => shortQueue(x.name));
  q.data.datasets[0].data = s.queues.map((x) => x.visible + x.delayed);
  q.data.datasets[1].data = s.queues.map((x) => x.in_flight);
  q.data.datasets[2].data = s.queues.map((x) => x.dlq_depth);
  q.update();
  rendered("card-queues");
}

function showHistory(h) {
  const samples = h.samples;
  if (!samples.length) return;
  const series = (key) => samples.map((s) => ({ x: s.at, y: s[key] }));
  const at = samples.map((s) => s.at);
  fitTime(charts.files, at, { alone: SAMPLES_ALONE_S });
  fitTime(charts.backlog, at, { alone: SAMPLES_ALONE_S });
  charts.files.data.datasets[0].data = series("files_received");
  charts.files.data.datasets[1].data = series("files_processed");
  charts.files.data.datasets[2].data = series("files_rejected");
  charts.files.update();
  rendered("card-files");

  charts.backlog.data.datasets[0].data = series("backlog");
  charts.backlog.data.datasets[1].data = series("dlq_total");
  charts.backlog.update();
  rendered("card-backlog");

  // one point per measurement: the sampler sees the same "last file" until another is written
  const seen = new Map();
  for (const s of samples) {
    if (s.freshness_lag_seconds !== null && !seen.has(s.freshness_measured_at)) {
      seen.set(s.freshness_measured_at, { x: Date.parse(s.freshness_measured_at) / 1000, y: s.freshness_lag_seconds });
    }
  }
  const points = [...seen.values()].sort((a, b) => a.x - b.x);
  charts.freshness.data.datasets[0].data = points;
  fitTime(charts.freshness, points.map((p) => p.x), { alone: FRESHNESS_ALONE_S, least: 5, pad: 0.04 });
  charts.freshness.update();
  showEmpty("card-freshness", points.length === 0);
  rendered("card-freshness");
}

async function refreshStatus() {
  try {
    const [status, history] = await Promise.all([api("pipeline/status"), api("pipeline/history")]);
    showStatus(status);
    showHistory(history);
  } catch (err) {
    if (err instanceof Unauthorized) askForKey();
    else setPill(null);
  }
}

// ---- one day --------------------------------------------------------------------------------

async function refreshDays() {
  try {
    const body = await api("days");
    const select = $("day-select");
    const days = body.days.map((d) => d.date);
    const current = [...select.options].map((o) => o.value);
    const newest = [...body.days].reverse();
    if (newest.map((d) => d.date).join() !== current.join()) {
      select.innerHTML = "";
      for (const d of newest) select.add(new Option(d.date, d.date));
      if (!days.length) select.add(new Option("no data yet", ""));
    }
    // labels are refreshed in place: a day recomputed keeps its option, and an open picker stays open
    newest.forEach((d, i) => {
      const c = computed(d.version, d.computed_at);
      select.options[i].text = [d.date, `${fmt.format(d.events)} listens`, c.text].filter(Boolean).join("  ·  ");
      select.options[i].title = c.title;
    });
    if (!state.day || !days.includes(state.day)) state.day = days.length ? days[days.length - 1] : null;
    select.value = state.day || "";
    select.title = select.selectedIndex >= 0 ? select.options[select.selectedIndex].title : "";
    await refreshDay();
  } catch (err) {
    if (err instanceof Unauthorized) askForKey();
  }
}

async function refreshDay() {
  if (!state.day) return;
  const day = state.day;
  const [top, hours] = await Promise.all([api(`days/${day}/top-genres`), api(`days/${day}/hours`)]);
  if (day !== state.day) return;
  const palette = [COLORS.indigo, COLORS.violet, COLORS.sky, COLORS.green, COLORS.amber];
  const genres = top ? top.genres : [];
  charts.genres.data.labels = genres.map((g) => g.genre);
  charts.genres.data.datasets[0].data = genres.map((g) => g.listen_count);
  charts.genres.data.datasets[0].backgroundColor = genres.map((_, i) => palette[i % palette.length]);
  charts.genres.update();
  showEmpty("card-genres", genres.length === 0);
  if (genres.length) rendered("card-genres");

  const byHour = new Map((hours ? hours.hours : []).map((h) => [h.hour, h]));
  charts.hours.data.datasets[0].data = [...Array(24).keys()].map((h) => (byHour.get(h) || {}).listen_count || 0);
  charts.hours.data.datasets[1].data = [...Array(24).keys()].map((h) => (byHour.get(h) || {}).unique_listeners || 0);
  charts.hours.update();
  showEmpty("card-hours", byHour.size === 0);
  if (byHour.size) rendered("card-hours");

  const total = genres.reduce((n, g) => n + g.listen_count, 0);
  $("day-meta").textContent = genres.length ? `top ${genres.length} genres hold ${fmt.format(total)} listens` : "";
  if (!state.genre || !genres.some((g) => g.genre === state.genre)) state.genre = genres.length ? genres[0].genre : null;
  if (state.genre) await selectGenre(state.genre);
}

async function selectGenre(genre) {
  state.genre = genre;
  const body = await api(`genres/${encodeURIComponent(genre)}/days/${state.day}`);
  if (!body) return;
  const c = computed(body.version, body.computed_at);
  $("genre-title").textContent = `${body.genre} on ${body.date}`;
  const meta = $("genre-computed");
  meta.textContent = [c.text, c.relative].filter(Boolean).join("  ·  ");
  meta.title = c.title;
  $("g-listens").textContent = fmt.format(body.listen_count);
  $("g-listeners").textContent = fmt.format(body.unique_listeners);
  $("g-time").textContent = duration(body.total_listening_time_ms);
  $("g-avg").textContent = duration(body.avg_listening_time_per_user_ms);
  const rows = $("g-songs");
  rows.innerHTML = "";
  for (const s of body.top_songs) {
    const tr = document.createElement("tr");
    for (const [text, cls] of [[s.rank, ""], [s.track_name, ""], [s.artists.replaceAll(";", ", "), ""], [fmt.format(s.listen_count), "num"]]) {
      const td = document.createElement("td");
      td.textContent = text;  // textContent: names come from uploaded files, never markup
      if (cls) td.className = cls;
      tr.append(td);
    }
    rows.append(tr);
  }
  rendered("card-genre");
}

$("day-select").addEventListener("change", (event) => {
  const select = event.target;
  select.title = select.selectedIndex >= 0 ? select.options[select.selectedIndex].title : "";
  state.day = select.value;
  state.genre = null;
  refreshDay();
});

makeCharts();
refreshStatus();
refreshDays();
setInterval(refreshStatus, STATUS_EVERY_MS);
setInterval(refreshDays, DAY_EVERY_MS);
