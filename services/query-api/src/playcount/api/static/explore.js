// Playcount explorer: a genre's trend over a date range, the genres' shares per day, and a week's
// listens by UTC hour and day. Chart.js (vendored, no build step) draws the two charts; the heatmap
// is a table whose cells carry their figures in data-listens. Each card gets data-rendered="true"
// once it shows the current choices ("false" while it reloads), and <body data-ready> lists the
// cards rendered (the browser test waits on it). Under each chart, a link to the API call behind it.
"use strict";

// distinct hues for the genres of the shares chart, given out in the legend's order
const GENRE_COLORS = [
  "#818cf8", "#34d399", "#fbbf24", "#fb7185", "#38bdf8", "#c084fc", "#f472b6", "#2dd4bf",
  "#fb923c", "#a3e635", "#60a5fa", "#e879f9", "#facc15", "#4ade80", "#f87171", "#94a3b8",
];
// the heatmap's colour ramp (explore.css draws the same stops in its legend)
const RAMP = [[0, [26, 35, 64]], [0.5, [99, 102, 241]], [0.8, [192, 132, 252]], [1, [253, 230, 138]]];
const DEFAULT_DAYS = 30; // the default range: this many of the latest days with data
const MAX_DAYS = 366; // the trend endpoint's longest range (inclusive)
const CARDS = ["trend", "shares", "heatmap"];

const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const percent = (share) => `${(share * 100).toFixed(1)}%`;
const short = (n) => (n >= 100_000 ? compact : fmt).format(n); // what fits a heatmap cell

const state = {
  withData: new Set(), // ISO dates with KPIs
  listens: new Map(), // ISO date -> the day's listens
  genres: [],
  genre: null, from: null, to: null, top: 5, week: null,
  shares: new Map(), // ISO date -> that day's ranking (as the API answered it)
};

// ---- the API key (pages.js) ---------------------------------------------------------------

onKeyEntered(start);

// ---- helpers --------------------------------------------------------------------------------

function addDays(iso, n) {
  const day = new Date(`${iso}T00:00:00Z`);
  day.setUTCDate(day.getUTCDate() + n);
  return day.toISOString().slice(0, 10);
}

/** Every ISO date from `from` to `to`, both included. */
function calendar(from, to) {
  const out = [];
  for (let day = from; day <= to; day = addDays(day, 1)) out.push(day);
  return out;
}

function dayName(iso, options) {
  return new Date(`${iso}T00:00:00Z`).toLocaleDateString("en-GB", { timeZone: "UTC", ...options });
}

const shortDate = (iso) => dayName(iso, { day: "numeric", month: "short" });

function setReady() {
  document.body.dataset.ready = CARDS.filter((c) => $(`card-${c}`).dataset.rendered === "true").join(" ");
}

// a load takes a ticket; a card shows only the answers of its latest ticket
const tickets = {};

function begin(card) {
  tickets[card] = (tickets[card] || 0) + 1;
  $(`card-${card}`).dataset.rendered = "false";
  setReady();
  return tickets[card];
}

function finish(card, ticket, note = "") {
  if (tickets[card] !== ticket) return;
  const empty = $(`card-${card}`).querySelector(".empty");
  if (empty) {
    empty.textContent = note;
    empty.hidden = !note;
  }
  $(`card-${card}`).dataset.rendered = "true";
  setReady();
}

/** Point the card's links at `path` (relative to the page) and its CSV variant. */
function setLink(id, path) {
  const link = $(id);
  link.href = path;
  const url = new URL(link.href);
  link.textContent = `GET ${url.pathname}${url.search}`;
  $(`${id}-csv`).href = `${path}${path.includes("?") ? "&" : "?"}format=csv`;
}

function failed(card, ticket, err) {
  if (err instanceof Unauthorized) askForKey();
  const note = err instanceof Unauthorized ? "reads need an API key (above)" : `the API failed: ${err.message}`;
  finish(card, ticket, note);
}

// ---- choices --------------------------------------------------------------------------------

function readChoices() {
  const days = [...state.withData].sort();
  const last = days[days.length - 1];
  const params = new URLSearchParams(location.search);
  const iso = (name) => (/^\d{4}-\d{2}-\d{2}$/.test(params.get(name) || "") ? params.get(name) : null);
  state.to = iso("to") || last;
  const fromLatest = days[Math.max(0, days.length - DEFAULT_DAYS)];
  state.from = iso("from") || (fromLatest < addDays(state.to, 1 - MAX_DAYS) ? addDays(state.to, 1 - MAX_DAYS) : fromLatest);
  state.week = iso("week") || last;
  const top = Number(params.get("top"));
  if ([3, 5, 8, 10].includes(top)) state.top = top;
  state.genre = params.get("genre") || null;
}

function writeChoices() {
  const params = new URLSearchParams({ genre: state.genre || "", from: state.from, to: state.to, top: state.top, week: state.week });
  history.replaceState(null, "", `?${params}`);
}

function showChoices() {
  $("from").value = state.from;
  $("to").value = state.to;
  $("week").value = state.week;
  $("top").value = String(state.top);
  const select = $("genre");
  select.innerHTML = "";
  const names = state.genre && !state.genres.includes(state.genre) ? [state.genre, ...state.genres] : state.genres;
  for (const name of names) select.add(new Option(name, name)); // Option(): names are text, never markup
  if (state.genre) select.value = state.genre;
}

/** A range the API takes, or why not. */
function rangeProblem() {
  if (!state.from || !state.to) return "choose both dates";
  if (state.from > state.to) return "“from” is after “to”";
  if (calendar(state.from, state.to).length > MAX_DAYS) return `at most ${MAX_DAYS} days`;
  return null;
}

function showRange() {
  const problem = rangeProblem();
  const meta = $("range-meta");
  meta.classList.toggle("bad", Boolean(problem));
  if (problem) {
    meta.textContent = problem;
    return false;
  }
  const days = calendar(state.from, state.to).filter((d) => state.withData.has(d));
  const listens = days.reduce((n, d) => n + state.listens.get(d), 0);
  const span = calendar(state.from, state.to).length;
  meta.textContent = `${span} days · ${days.length} with data · ${fmt.format(listens)} listens`;
  return true;
}

// ---- the genre's trend ----------------------------------------------------------------------

const charts = {};

function makeCharts() {
  charts.trend = new Chart($("chart-trend"), {
    type: "line",
    data: {
      labels: [],
      datasets: [
        { label: "listens", data: [], yAxisID: "y", borderColor: COLORS.indigo, backgroundColor: `${COLORS.indigo}33`,
          fill: true, cubicInterpolationMode: "monotone", pointRadius: 3, borderWidth: 2 },
        { label: "unique listeners", data: [], yAxisID: "y2", borderColor: COLORS.green, backgroundColor: COLORS.green,
          cubicInterpolationMode: "monotone", pointRadius: 3, borderWidth: 2 },
      ],
    },
    options: {
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { grid: { display: false }, ticks: { callback(v) { return shortDate(this.getLabelForValue(v)); },
             maxRotation: 0, autoSkip: true, maxTicksLimit: 16 } },
        y: { beginAtZero: true, title: { display: true, text: "listens" }, ticks: { precision: 0 } },
        y2: { beginAtZero: true, position: "right", grid: { display: false }, title: { display: true, text: "unique listeners" },
              ticks: { precision: 0 } },
      },
      plugins: {
        tooltip: { callbacks: { title: (items) => dayName(items[0].label, { weekday: "short", day: "numeric", month: "short", year: "numeric" }) } },
      },
    },
  });
  charts.shares = new Chart($("chart-shares"), {
    type: "bar",
    data: { labels: [], datasets: [] },
    options: {
      animation: false,
      interaction: { mode: "index", intersect: false },
      datasets: { bar: { barPercentage: 0.92, categoryPercentage: 0.92 } },
      scales: {
        x: { stacked: true, grid: { display: false }, ticks: { callback(v) { return shortDate(this.getLabelForValue(v)); },
             maxRotation: 0, autoSkip: true, maxTicksLimit: 16 } },
        y: { stacked: true, min: 0, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)}%`, stepSize: 0.25 } },
      },
      plugins: {
        legend: { position: "right", labels: { padding: 9 } },
        tooltip: {
          filter: (item) => item.raw !== null && item.raw > 0,
          itemSort: (a, b) => b.raw - a.raw,
          callbacks: {
            title: (items) => dayName(items[0].label, { weekday: "short", day: "numeric", month: "short", year: "numeric" }),
            label: (item) => {
              const ranking = state.shares.get(item.label);
              const row = ranking && ranking.genres.find((g) => g.genre === item.dataset.label);
              const count = row ? ` · ${fmt.format(row.listen_count)} listens` : "";
              return `${item.dataset.label}: ${percent(item.raw)}${count}`;
            },
            footer: (items) => {
              const ranking = state.shares.get(items[0].label);
              return ranking ? `${fmt.format(ranking.listens)} listens · ${ranking.total} genres` : "";
            },
          },
        },
      },
      onClick: (_event, elements) => {
        if (!elements.length) return;
        const day = charts.shares.data.labels[elements[0].index];
        if (state.shares.has(day)) setLink("link-shares", sharesPath(day));
      },
    },
  });
}

async function loadTrend() {
  const ticket = begin("trend");
  const { genre, from, to } = state;
  if (!genre) {
    finish("trend", ticket, "no genre has data yet");
    return;
  }
  const path = `genres/${encodeURIComponent(genre)}/days?from=${from}&to=${to}`;
  setLink("link-trend", path);
  try {
    const body = await api(path);
    if (tickets.trend !== ticket) return;
    const byDate = new Map((body ? body.days : []).map((d) => [d.date, d]));
    // a day with KPIs but none for the genre had no listens of it; a day without KPIs is a gap
    const value = (day, key) => (byDate.has(day) ? byDate.get(day)[key] : state.withData.has(day) ? 0 : null);
    const labels = calendar(from, to);
    charts.trend.data.labels = labels;
    charts.trend.data.datasets[0].data = labels.map((d) => value(d, "listen_count"));
    charts.trend.data.datasets[1].data = labels.map((d) => value(d, "unique_listeners"));
    charts.trend.update();
    const note = body === null ? `no data for the genre “${genre}”` : byDate.size ? "" : `no listens of ${genre} in this range`;
    finish("trend", ticket, note);
  } catch (err) {
    failed("trend", ticket, err);
  }
}

// ---- the genres' shares per day -------------------------------------------------------------

const sharesPath = (day) => `days/${day}/genres?limit=${state.top}`;

async function loadShares() {
  const ticket = begin("shares");
  const { from, to } = state;
  const labels = calendar(from, to);
  const days = labels.filter((d) => state.withData.has(d));
  try {
    const rankings = await Promise.all(days.map((d) => api(sharesPath(d))));
    if (tickets.shares !== ticket) return;
    state.shares = new Map(days.map((d, i) => [d, rankings[i]]).filter(([, r]) => r));
    // the genres shown: each in some day's top N, most listens over the range first
    const shown = mostListened().map(([genre]) => genre);
    const share = (day, genre) => {
      const ranking = state.shares.get(day);
      const row = ranking && ranking.genres.find((g) => g.genre === genre);
      return row ? row.share : null; // outside the day's top N: counted in "other"
    };
    const other = (day) => {
      const ranking = state.shares.get(day);
      if (!ranking) return null;
      const held = ranking.genres.reduce((n, g) => n + g.share, 0);
      return ranking.total > ranking.genres.length ? Math.max(0, 1 - held) : 0;
    };
    charts.shares.data.labels = labels;
    charts.shares.data.datasets = [
      ...shown.map((genre, i) => ({
        label: genre, data: labels.map((d) => share(d, genre)), backgroundColor: GENRE_COLORS[i % GENRE_COLORS.length],
      })),
      { label: "other", data: labels.map(other), backgroundColor: COLORS.other },
    ];
    charts.shares.update();
    const latest = [...state.shares.keys()].pop() || to;
    setLink("link-shares", sharesPath(latest));
    finish("shares", ticket, state.shares.size ? "" : "no data in this range");
  } catch (err) {
    failed("shares", ticket, err);
  }
}

/** [genre, listens] over the range for the genres in some day's top N, most listens first (ties by name). */
function mostListened() {
  const sums = new Map();
  for (const r of state.shares.values()) {
    for (const g of r.genres) sums.set(g.genre, (sums.get(g.genre) || 0) + g.listen_count);
  }
  return [...sums].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

/** The default genre: the most listened over the range (as far as the days' top lists tell). */
function topGenre() {
  const best = mostListened()[0];
  return best ? best[0] : state.genres[0] || null;
}

// ---- a week's hours -------------------------------------------------------------------------

function heatColor(fraction) {
  for (let i = 1; i < RAMP.length; i++) {
    const [at, rgb] = RAMP[i];
    if (fraction <= at) {
      const [was, from] = RAMP[i - 1];
      const t = (fraction - was) / (at - was);
      const mix = from.map((c, k) => Math.round(c + (rgb[k] - c) * t));
      return `rgb(${mix.join(", ")})`;
    }
  }
  return `rgb(${RAMP[RAMP.length - 1][1].join(", ")})`;
}

function cell(tag, text, className) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}

function heatHead() {
  const row = document.createElement("tr");
  row.append(cell("th", "UTC day", "day"));
  for (let h = 0; h < 24; h++) row.append(cell("th", String(h).padStart(2, "0")));
  row.append(cell("th", "total", "total"));
  const head = $("heatmap").tHead;
  head.innerHTML = "";
  head.append(row);
}

function heatRow(day, hours, max) {
  const row = document.createElement("tr");
  row.dataset.date = day;
  const label = cell("th", "", "day");
  label.scope = "row";
  const name = `${dayName(day, { weekday: "short" })} ${day}`;
  if (hours) {
    const link = document.createElement("a");
    link.href = `days/${day}/hours`;
    link.textContent = name;
    link.title = `GET /days/${day}/hours`;
    label.append(link);
  } else {
    label.textContent = name;
  }
  row.append(label);
  if (!hours) {
    const none = cell("td", "no data for this day", "nodata");
    none.colSpan = 25;
    row.append(none);
    return row;
  }
  const byHour = new Map(hours.hours.map((h) => [h.hour, h]));
  let total = 0;
  for (let h = 0; h < 24; h++) {
    const stats = byHour.get(h);
    const listens = stats ? stats.listen_count : 0;
    total += listens;
    const fraction = max ? listens / max : 0;
    const td = cell("td", listens ? short(listens) : "·", fraction > 0.72 ? "hot" : "");
    td.dataset.hour = String(h);
    td.dataset.listens = String(listens);
    td.style.backgroundColor = heatColor(fraction); // CSSOM, not an inline style attribute: the CSP allows it
    const listeners = stats ? ` · ${fmt.format(stats.unique_listeners)} unique listeners` : "";
    td.title = `${name}, ${String(h).padStart(2, "0")}:00–${String(h + 1).padStart(2, "0")}:00 UTC: ${fmt.format(listens)} listens${listeners}`;
    row.append(td);
  }
  const sum = cell("td", short(total), "total");
  sum.dataset.listens = String(total);
  sum.title = `${name}: ${fmt.format(total)} listens`;
  row.append(sum);
  return row;
}

async function loadHeatmap() {
  const ticket = begin("heatmap");
  const end = state.week;
  const days = calendar(addDays(end, -6), end);
  setLink("link-heatmap", `days/${end}/hours`);
  try {
    const bodies = await Promise.all(days.map((d) => (state.withData.has(d) ? api(`days/${d}/hours`) : null)));
    if (tickets.heatmap !== ticket) return;
    const max = Math.max(0, ...bodies.flatMap((b) => (b ? b.hours.map((h) => h.listen_count) : [])));
    heatHead();
    const body = $("heatmap").tBodies[0];
    body.innerHTML = "";
    days.forEach((d, i) => body.append(heatRow(d, bodies[i], max)));
    $("heat-max").textContent = fmt.format(max);
    const latest = days.filter((d, i) => bodies[i]).pop();
    if (latest) setLink("link-heatmap", `days/${latest}/hours`);
    finish("heatmap", ticket, "");
  } catch (err) {
    failed("heatmap", ticket, err);
  }
}

// ---- wiring ---------------------------------------------------------------------------------

async function start() {
  try {
    const [days, genres] = await Promise.all([api("days"), api("genres")]);
    state.withData = new Set(days.days.map((d) => d.date));
    state.listens = new Map(days.days.map((d) => [d.date, d.listens ?? d.events]));
    state.genres = genres.genres;
  } catch (err) {
    if (err instanceof Unauthorized) askForKey();
    $("range-meta").textContent = err instanceof Unauthorized ? "reads need an API key" : `the API failed: ${err.message}`;
    return;
  }
  if (!state.withData.size) {
    $("range-meta").textContent = "no data yet: upload listens and come back";
    const today = new Date().toISOString().slice(0, 10);
    state.from = state.to = state.week = today;
  } else {
    readChoices();
  }
  showChoices();
  const heatmap = loadHeatmap();
  if (showRange()) {
    await loadShares(); // the default genre is the range's most listened, which the shares tell
    if (!state.genre) state.genre = topGenre();
    showChoices();
    await loadTrend();
  } else {
    for (const card of ["trend", "shares"]) finish(card, begin(card), rangeProblem());
  }
  await heatmap;
  writeChoices();
}

function rangeChanged() {
  state.from = $("from").value;
  state.to = $("to").value;
  writeChoices();
  if (showRange()) {
    loadTrend();
    loadShares();
  } else {
    for (const card of ["trend", "shares"]) finish(card, begin(card), rangeProblem());
  }
}

$("from").addEventListener("change", rangeChanged);
$("to").addEventListener("change", rangeChanged);
$("genre").addEventListener("change", (event) => {
  state.genre = event.target.value;
  writeChoices();
  if (rangeProblem() === null) loadTrend();
});
$("top").addEventListener("change", (event) => {
  state.top = Number(event.target.value);
  writeChoices();
  if (rangeProblem() === null) loadShares();
});
$("week").addEventListener("change", (event) => {
  if (!event.target.value) return;
  state.week = event.target.value;
  writeChoices();
  loadHeatmap();
});

makeCharts();
start();
