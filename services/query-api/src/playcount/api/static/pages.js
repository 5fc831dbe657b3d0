// What the pages (dashboard, explorer) share: the palette, Chart.js defaults, the API key, and
// `api(path)`, which fetches JSON from the query API. Loaded before each page's own script.
"use strict";

const COLORS = {
  green: "#34d399", rose: "#fb7185", amber: "#fbbf24", sky: "#38bdf8",
  violet: "#a78bfa", indigo: "#818cf8", muted: "#8b96b5", line: "#24304f", other: "#46506e",
};

Chart.defaults.color = COLORS.muted;
Chart.defaults.borderColor = COLORS.line;
Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
Chart.defaults.plugins.legend.labels.boxWidth = 12;
Chart.defaults.plugins.legend.labels.boxHeight = 12;
Chart.defaults.maintainAspectRatio = false;

const $ = (id) => document.getElementById(id);
const fmt = new Intl.NumberFormat("en-US");
const KEY_ITEM = "playcount-api-key"; // kept in the browser, shared by the pages
const auth = { key: localStorage.getItem(KEY_ITEM) || "" };

class Unauthorized extends Error {}

class ApiError extends Error {
  constructor(path, status, detail) {
    super(`${path}: HTTP ${status}${detail ? ` (${detail})` : ""}`);
    this.status = status;
  }
}

/** The JSON body at `path` (relative to the page), null for a 404. */
async function api(path) {
  const headers = auth.key ? { "X-API-Key": auth.key } : {};
  const response = await fetch(path, { headers });
  if (response.status === 401) throw new Unauthorized(path);
  if (response.status === 404) return null;
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || "");
    throw new ApiError(path, response.status, detail);
  }
  return response.json();
}

/** Show the key form when reads need a key; `then()` runs once a key is entered. */
function askForKey() {
  $("key-form").hidden = false;
}

function onKeyEntered(then) {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    auth.key = $("key-input").value.trim();
    localStorage.setItem(KEY_ITEM, auth.key);
    $("key-form").hidden = true;
    then();
  });
}
