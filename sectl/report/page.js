// sectl report: the page's behaviour. Plain JavaScript, no library and no network: the data is the JSON in
// #report-data (sectl/report/page.py writes it), the audio and spectrograms are files beside the page.
// Each mode of the page is one view function in MODES: "listen" (the report) and "test" (a blind listening
// test over the same Player).
"use strict";

const DATA = JSON.parse(document.getElementById("report-data").textContent);
const SEEK_STEP_S = 2;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function fmt(value, digits = 2) {
  return value === null || value === undefined ? "–" : value.toFixed(digits);
}

function metricInfo(name) {
  return DATA.metrics.find((m) => m.name === name);
}

// One transport per utterance: a single <audio> whose source changes with the version, so that switching
// keeps the playing position (the reason the page does not use one <audio controls> per file). While a switch
// is in flight (the new file's metadata not loaded yet) the position and play state wait in `pending`: the
// element reads 0 and paused then, so a second quick switch would otherwise restart the clip, stopped.
class Player {
  constructor(utterance, onTime) {
    this.utterance = utterance;
    this.audio = el("audio", { preload: "none" });
    this.version = 0;
    this.loaded = false;
    this.onTime = onTime;
    this.frame = null;
    this.pending = null; // { position, resume } while a version switch loads
    this.audio.addEventListener("timeupdate", () => { if (!this.pending) this.onTime(this.audio.currentTime); });
    this.audio.addEventListener("play", () => this.tick());
    this.audio.addEventListener("seeked", () => { if (!this.pending) this.onTime(this.audio.currentTime); });
    this.audio.addEventListener("loadedmetadata", () => this.settle());
    this.audio.addEventListener("error", () => { this.pending = null; });
  }

  // Only rows near the viewport get a source (IntersectionObserver calls this): hundreds of rows stay light.
  load() {
    if (this.loaded) return;
    this.loaded = true;
    this.audio.preload = "metadata";
    this.audio.src = this.utterance.audio[this.version];
  }

  get playing() {
    return this.pending ? this.pending.resume : !this.audio.paused;
  }

  get position() {
    return this.pending ? this.pending.position : this.audio.currentTime;
  }

  play() {
    this.load();
    Player.stopOthers(this);
    if (this.pending) {
      this.pending.resume = true;
      return Promise.resolve();
    }
    // A switch or a pause before playback starts aborts this play (AbortError): expected, not an error.
    return this.audio.play().catch((error) => { if (error.name !== "AbortError") throw error; });
  }

  pause() {
    if (this.pending) this.pending.resume = false;
    this.audio.pause();
  }

  toggle() {
    return this.playing ? this.pause() : this.play();
  }

  seek(seconds) {
    this.load();
    const t = Math.max(0, Math.min(this.utterance.duration, seconds));
    if (this.pending) this.pending.position = t;
    else this.audio.currentTime = t;
    this.onTime(this.position);
  }

  // The new version continues from the same position, playing if the old one was (or was about to).
  select(index) {
    if (index === this.version || index < 0 || index >= this.utterance.audio.length) return;
    if (!this.pending) this.pending = { position: this.audio.currentTime, resume: !this.audio.paused };
    this.version = index;
    this.loaded = true;
    this.audio.src = this.utterance.audio[index];
    this.audio.load();
  }

  // The switched-to file knows its duration: move to the kept position and play on if the listener was.
  settle() {
    const pending = this.pending;
    if (!pending) return;
    this.pending = null;
    this.audio.currentTime = pending.position;
    this.onTime(pending.position);
    if (pending.resume) this.play();
  }

  tick() {
    cancelAnimationFrame(this.frame);
    const step = () => {
      if (!this.pending) this.onTime(this.audio.currentTime);
      if (!this.audio.paused) this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  static stopOthers(current) {
    for (const player of Player.all) if (player !== current && player.playing) player.pause();
  }
}
Player.all = [];

// A comparator's view of a score: missing ones (null, NaN) sort after every number, whichever the direction, and
// among themselves by the tie-break, so the comparator stays consistent (sort() needs that).
function byScore(x, y, sign, tie) {
  const xMissing = x === null || x === undefined || Number.isNaN(x);
  const yMissing = y === null || y === undefined || Number.isNaN(y);
  if (xMissing || yMissing) return (xMissing - yMissing) || tie;
  return sign * (x - y) || tie;
}

// The summary table: one row per system, each metric's mean [95 % CI] and wins-losses against the first
// system, from the embedded `sectl eval --json` comparison. Sorting by a metric also orders the utterances.
function summaryTable(onMetric) {
  const systems = DATA.eval.systems;
  const table = el("table", { id: "summary-table" });
  const caption = el("caption", { class: "note", text: `mean [95 % CI] and wins-losses per file against ${systems[0].name}; ${systems[0].files.length} file(s) scored per system` });
  const head = el("tr");
  const body = el("tbody");
  const sortState = { key: null, best: true };
  const headers = [];

  function sortBy(key) {
    sortState.best = sortState.key === key ? !sortState.best : true;
    sortState.key = key;
    const rows = [...body.rows];
    const value = (row) => (key === "system" ? row.dataset.system : Number(row.dataset[`m_${key}`]));
    const sign = key === "system" ? 1 : (metricInfo(key).higher_is_better ? -1 : 1) * (sortState.best ? 1 : -1);
    rows.sort((a, b) => {
      const x = value(a), y = value(b);
      if (key === "system") return (sortState.best ? 1 : -1) * String(x).localeCompare(String(y));
      return byScore(x, y, sign, a.dataset.system.localeCompare(b.dataset.system));
    });
    body.append(...rows);
    for (const th of headers) th.removeAttribute("aria-sort");
    const th = headers.find((h) => h.dataset.key === key);
    const up = key === "system" ? sortState.best : (metricInfo(key).higher_is_better ? !sortState.best : sortState.best);
    th.setAttribute("aria-sort", up ? "ascending" : "descending");
    if (key !== "system") onMetric(key, sortState.best);
  }

  for (const key of ["system", ...DATA.metrics.map((m) => m.name)]) {
    const unit = key === "system" ? "" : metricInfo(key).unit;
    const label = key === "system" ? "Sort the systems by name" : `Sort the systems by ${key} and order the utterances by it`;
    const button = el("button", { type: "button", "aria-label": label, text: key + (unit ? ` (${unit})` : "") });
    button.addEventListener("click", () => sortBy(key));
    const th = el("th", { scope: "col", "data-key": key }, button);
    headers.push(th);
    head.append(th);
  }
  systems.forEach((system, i) => {
    const row = el("tr", { "data-system": system.name }, el("td", { text: system.name }));
    for (const { name } of DATA.metrics) {
      const mean = system.mean[name];
      const ci = system.ci95[name];
      const wl = system.versus_first[name];
      row.dataset[`m_${name}`] = mean === null ? "NaN" : String(mean);
      row.append(el("td", {},
        fmt(mean, 3),
        ci ? el("span", { class: "ci", text: ` [${fmt(ci[0], 3)}, ${fmt(ci[1], 3)}]` }) : "",
        i && wl ? el("span", { class: "wl", text: `  ${wl.wins}-${wl.losses}` }) : ""));
    }
    body.append(row);
  });
  table.append(caption, el("thead", {}, head), body);
  // Wide tables (many metrics) scroll inside their box on a narrow screen instead of widening the page.
  return el("div", { class: "table-scroll", id: "summary-scroll" }, table);
}

// One utterance: its transport, then each version's row (pick button with its key, spectrogram with the
// moving cursor, the version's scores).
function utteranceView(utterance, index, activate) {
  const article = el("article", { class: "utt", id: `u${index}`, tabindex: "-1", "aria-label": utterance.name });
  const play = el("button", { type: "button", class: "play", "aria-label": `Play ${utterance.name}`, text: "▶" });
  const seek = el("input", { type: "range", class: "seek", min: "0", max: String(utterance.duration), step: "0.01", value: "0",
                             "aria-label": `Position in ${utterance.name} (seconds)` });
  const time = el("span", { class: "time", text: `0.00 / ${fmt(utterance.duration)} s` });
  const cursors = [];
  const rows = [];
  const images = [];
  const player = new Player(utterance, (t) => {
    const share = `${(100 * t / utterance.duration).toFixed(3)}%`;
    for (const cursor of cursors) cursor.style.left = share;
    if (document.activeElement !== seek) seek.value = String(t);
    time.textContent = `${fmt(t)} / ${fmt(utterance.duration)} s`;
  });
  Player.all.push(player);
  // The versions are one radio group: one tab stop (the checked one), arrow keys move within it.
  const showVersion = () => rows.forEach((row, j) => {
    row.classList.toggle("current", j === player.version);
    const pick = row.querySelector(".pick");
    pick.setAttribute("aria-checked", String(j === player.version));
    pick.tabIndex = j === player.version ? 0 : -1;
  });
  player.audio.addEventListener("play", () => { play.textContent = "❚❚"; play.setAttribute("aria-label", `Pause ${utterance.name}`); });
  player.audio.addEventListener("pause", () => { play.textContent = "▶"; play.setAttribute("aria-label", `Play ${utterance.name}`); });
  play.addEventListener("click", () => { activate(view); player.toggle(); });
  seek.addEventListener("input", () => { activate(view); player.seek(Number(seek.value)); });

  const group = el("div", { role: "radiogroup", "aria-label": `Version of ${utterance.name}` });
  DATA.versions.forEach((name, j) => {
    const pick = el("button", { type: "button", role: "radio", class: "pick", "aria-checked": "false",
                                "aria-label": `${name} (key ${j + 1})` },
                    el("kbd", { text: String(j + 1) }), name);
    pick.addEventListener("click", () => { activate(view); player.select(j); showVersion(); });
    const img = el("img", { alt: `Spectrogram of ${utterance.name}, ${name}`, "data-src": utterance.spectrogram[j],
                            width: "800", height: "72" });
    images.push(img);
    const cursor = el("div", { class: "cursor" });
    cursors.push(cursor);
    const spec = el("div", { class: "spec", title: "Click to play this version from here" }, img, cursor);
    spec.addEventListener("click", (event) => {
      activate(view);
      const box = spec.getBoundingClientRect();
      player.select(j);
      showVersion();
      player.seek(utterance.duration * (event.clientX - box.left) / box.width);  // kept while the switch loads
      if (!player.playing) player.play();
    });
    const scores = el("table", { class: "scores" });
    const own = utterance.scores[j] || {};
    for (const { name: metric } of DATA.metrics) {
      if (metric in own) scores.append(el("tr", {}, el("td", { text: metric }), el("td", { text: fmt(own[metric], 3) })));
    }
    if (!scores.rows.length) scores.append(el("tr", {}, el("td", { text: j === DATA.reference ? "reference" : "" })));
    const row = el("div", { class: "version" }, pick, spec, scores);
    rows.push(row);
    group.append(row);
  });
  group.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (!step || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    event.stopPropagation();  // within the group the arrows choose the version; elsewhere they seek and move
    const next = (player.version + step + rows.length) % rows.length;
    view.pick(next);
    rows[next].querySelector(".pick").focus();
  });
  showVersion();
  article.append(el("h3", { text: utterance.name }), el("div", { class: "transport" }, play, seek, time), player.audio, group);
  article.addEventListener("focusin", () => activate(view));  // the keys act on the utterance that has the focus
  const view = {
    article, player, utterance,
    reveal() { player.load(); for (const img of images) if (!img.src) img.src = img.dataset.src; },
    pick(j) { player.select(j); showVersion(); },
  };
  return view;
}

// Space on a focused button presses that button (the summary's sort buttons, Next, Download...), as a keyboard
// user expects; only a transport's own buttons (play, a version or sample) leave it to the play/pause shortcut.
function pressesButton(event) {
  return event.key === " " && event.target.tagName === "BUTTON" && !event.target.matches(".play, .pick");
}

function listenView(main) {
  const views = [];
  let active = null;
  const activate = (view) => {
    if (active) active.article.classList.remove("active");
    active = view;
    view.article.classList.add("active");
  };
  const list = el("div", { id: "list" });
  const metric = el("select", { id: "order-metric" }, el("option", { value: "", text: "file name" }),
                    ...DATA.metrics.map((m) => el("option", { value: m.name, text: m.name })));
  const system = el("select", { id: "order-system" }, ...DATA.eval.systems.map((s, i) => el("option", { value: String(i), text: s.name })));
  system.value = String(DATA.judged);
  const direction = el("select", { id: "order-direction" }, el("option", { value: "worst", text: "worst first" }),
                       el("option", { value: "best", text: "best first" }));

  function order() {
    const name = metric.value;
    const sys = Number(system.value);
    const score = (v) => (name ? v.utterance.scores[sys][name] : null);
    const sign = name ? (metricInfo(name).higher_is_better ? 1 : -1) * (direction.value === "worst" ? 1 : -1) : 1;
    const sorted = [...views].sort((a, b) => {
      const tie = a.utterance.name.localeCompare(b.utterance.name);
      return name ? byScore(score(a), score(b), sign, tie) : tie;
    });
    list.append(...sorted.map((v) => v.article));
    views.splice(0, views.length, ...sorted);
  }
  for (const control of [metric, system, direction]) control.addEventListener("change", order);

  main.append(
    el("section", { id: "summary", "aria-labelledby": "summary-title" }, el("h2", { id: "summary-title", text: "Systems" }),
       summaryTable((name, best) => { metric.value = name; direction.value = best ? "worst" : "best"; order(); })),
    el("section", { id: "utterances", "aria-labelledby": "utterances-title" },
       el("h2", { id: "utterances-title", text: `Utterances (${DATA.utterances.length}${DATA.selection ? ` of ${DATA.selection.of}, ${DATA.selection.by}` : ""})` }),
       el("div", { class: "controls" },
          el("label", { for: "order-metric", text: "Order by" }), metric,
          el("label", { for: "order-system", text: "of system" }), system,
          el("label", { for: "order-direction", text: "direction" }), direction),
       el("p", { class: "keys", text: "Keys: space play/pause · 1–9 version · ←/→ back/forward 2 s · ↑/↓ previous/next utterance" }),
       list));

  DATA.utterances.forEach((utterance, i) => views.push(utteranceView(utterance, i, activate)));
  list.append(...views.map((v) => v.article));
  const byArticle = new Map(views.map((v) => [v.article, v]));
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) { byArticle.get(entry.target).reveal(); observer.unobserve(entry.target); }
    }
  }, { rootMargin: "300px 0px" });
  for (const view of views) observer.observe(view.article);
  if (views.length) activate(views[0]);

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (!active || event.altKey || event.ctrlKey || event.metaKey || target.tagName === "SELECT" || pressesButton(event)) return;
    const player = active.player;
    let handled = true;
    if (event.key === " ") player.toggle();
    else if (/^[1-9]$/.test(event.key)) active.pick(Number(event.key) - 1);
    else if (event.key === "ArrowLeft") player.seek(player.position - SEEK_STEP_S);
    else if (event.key === "ArrowRight") player.seek(player.position + SEEK_STEP_S);
    else if (event.key === "ArrowUp" || event.key === "ArrowDown") {
      const next = views[views.indexOf(active) + (event.key === "ArrowUp" ? -1 : 1)];
      if (next) {
        const resume = player.playing;
        player.pause();
        activate(next);
        next.reveal();
        next.article.focus({ preventScroll: true });
        next.article.scrollIntoView({ block: "nearest" });
        if (resume) next.player.play();
      }
    } else handled = false;
    if (handled) event.preventDefault();
  });
}

// ---- The blind listening test (mode "test"): the definition is DATA.test (sectl/report/listening.py). ----

// SHA-256 of a string's UTF-8 bytes, hex (FIPS 180-4). Written out rather than crypto.subtle, which is async
// and absent outside secure contexts; sectl checks it with Python's hashlib.
function sha256(text) {
  const K = [];
  const H = [];
  const frac = (x) => ((x - Math.floor(x)) * 4294967296) >>> 0;
  for (let n = 2, found = 0; found < 64; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break; }
    if (!prime) continue;
    if (found < 8) H.push(frac(Math.sqrt(n)));
    K.push(frac(Math.cbrt(n)));
    found++;
  }
  const bytes = new TextEncoder().encode(text);
  const length = ((bytes.length + 9 + 63) >> 6) << 6;
  const padded = new Uint8Array(length);
  padded.set(bytes);
  padded[bytes.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(length - 8, Math.floor(bytes.length / 0x20000000));
  view.setUint32(length - 4, (bytes.length * 8) >>> 0);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let offset = 0; offset < length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + 4 * i);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, h] = H;
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      [h, g, f, e, d, c, b, a] = [g, f, e, (d + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
    }
    [a, b, c, d, e, f, g, h].forEach((x, i) => { H[i] = (H[i] + x) >>> 0; });
  }
  return H.map((x) => x.toString(16).padStart(8, "0")).join("");
}

// JSON with sorted keys and no spaces: what Python's json.dumps(sort_keys=True, separators=(",", ":"),
// ensure_ascii=False) writes for the ratings (strings, integers, booleans), so both hash the same text.
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

// The rater's order: a PRNG (mulberry32) seeded by the test id and the rater id, so the same id always gets
// the same order and one page serves every rater.
function seededRandom(text) {
  let seed = 2166136261;
  for (const ch of text) seed = Math.imul(seed ^ ch.codePointAt(0), 16777619) >>> 0;
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled(items, random) {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

function testView(main) {
  const T = DATA.test;
  const storeKey = `sectl-test:${T.test_id}:${DATA.sha256}`;
  const mushra = T.method === "mushra";
  let state = JSON.parse(localStorage.getItem(storeKey) || "null");
  let current = null; // the trial on screen: { player, pick }
  document.getElementById("about").textContent =
    `Listening test (${{ acr: "ACR, ITU-T P.808", p835: "ITU-T P.835", mushra: "MUSHRA, ITU-R BS.1534-3" }[T.method]}), ` +
    `${T.practice.length} practice and ${T.trials.length} test trials. Your ratings stay in this browser until you download them.`;

  const save = () => localStorage.setItem(storeKey, JSON.stringify(state));

  // Practice first in its own order, then the test trials; every trial's stimuli shuffled (MUSHRA).
  function sequence(rater) {
    const random = seededRandom(`${T.test_id}\u0000${rater}`);
    const plan = (trial, practice) => ({ trial, practice, order: shuffled(trial.audio.map((_, i) => i), random) });
    return [...shuffled(T.practice, random).map((t) => plan(t, true)), ...shuffled(T.trials, random).map((t) => plan(t, false))];
  }

  function ratingsFile() {
    const body = {
      format: 1, test_id: T.test_id, test_sha256: DATA.sha256, method: T.method, rater: state.rater,
      complete: state.position >= state.total, started_ms: state.started_ms, trials: state.records,
    };
    return { sectl_ratings: 1, body, sha256: sha256(canonical(body)) };
  }

  function download() {
    const blob = new Blob([JSON.stringify(ratingsFile(), null, 1)], { type: "application/json" });
    const link = el("a", { href: URL.createObjectURL(blob), download: `ratings-${T.test_id}-${state.rater}.json`.replace(/[^\w.-]+/g, "_") });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    state.downloaded = state.position;  // the file holds the trials rated so far; a later rating makes it stale
    save();
  }

  function start() {
    main.replaceChildren();
    const input = el("input", { id: "rater-id", type: "text", autocomplete: "off", maxlength: "64" });
    const go = el("button", { type: "button", id: "start", text: "Start" });
    const form = el("form", { id: "start-form" },
      el("p", { text: "Use headphones in a quiet room. Type the rater id you were given (it decides the order of the trials; " +
                      "use the same id to continue on this computer)." }),
      el("label", { for: "rater-id", text: "Rater id " }), input, " ", go);
    const begin = (event) => {
      event.preventDefault();
      const rater = input.value.trim();
      if (!rater) { input.focus(); return; }
      state = { rater, started_ms: Date.now(), position: 0, total: sequence(rater).length, records: [], draft: null, downloaded: null };
      save();
      show();
    };
    go.addEventListener("click", begin);
    form.addEventListener("submit", begin);
    main.append(el("section", { id: "test-start", "aria-labelledby": "test-title" }, el("h2", { id: "test-title", text: "Before you start" }), form));
    input.focus();
  }

  // Starting again deletes this rater's ratings from the browser: never before they are downloaded, unless the
  // rater, warned, asks a second time.
  function finish() {
    main.replaceChildren();
    const button = el("button", { type: "button", id: "download", text: "Download my ratings" });
    const again = el("button", { type: "button", id: "restart", text: "Start again as another rater" });
    const warning = el("p", { id: "restart-warning", class: "ask", role: "alert", hidden: "",
                              text: "Your ratings are not downloaded yet, and starting again deletes them from this browser. " +
                                    "Download them first, or press the button again to delete them." });
    let warned = false;
    button.addEventListener("click", () => {
      download();
      warned = false;
      warning.hidden = true;
      again.textContent = "Start again as another rater";
    });
    again.addEventListener("click", () => {
      if (state.downloaded !== state.position && !warned) {
        warned = true;
        warning.hidden = false;
        again.textContent = "Delete my ratings and start again";
        return;
      }
      localStorage.removeItem(storeKey);
      state = null;
      start();
    });
    main.append(el("section", { id: "test-end", "aria-labelledby": "end-title" },
      el("h2", { id: "end-title", text: "Thank you" }),
      el("p", { text: `All ${state.total} trials are rated. Download your ratings and send the file to the person who runs the test.` }),
      button, " ", again, warning));
  }

  function show() {
    if (!state) return start();
    if (state.position >= state.total) return finish();
    const plan = sequence(state.rater)[state.position];
    if (!state.draft || state.draft.id !== plan.trial.id) {
      state.draft = { id: plan.trial.id, ratings: {}, started_ms: Date.now(), plays: 0, heard: [], answered: {} };
      save();
    }
    trialView(plan);
  }

  // A vote counts once its clip was heard: ACR and P.835 show a scale only after the clip has played (P.835, as
  // its section 7 prescribes, one scale at a time: SIG, then BAK, then OVRL, each after the clip is played
  // again); MUSHRA enables a sample's slider once the sample has played. `heard` is per stimulus (trial.audio
  // index), `answered` the play count when each scale was first answered.
  function trialView(plan) {
    const { trial, practice, order } = plan;
    const draft = state.draft;
    draft.heard = draft.heard || [];
    draft.answered = draft.answered || {};
    const practiceCount = T.practice.length;
    const n = state.position + 1;
    const heading = practice ? `Practice trial ${n} of ${practiceCount}` : `Trial ${n - practiceCount} of ${T.trials.length}`;
    main.replaceChildren();
    Player.all.forEach((p) => p.pause());
    Player.all = [];
    // MUSHRA plays the open reference as version 0, then the stimuli in the rater's order.
    const sources = mushra ? [trial.reference, ...order.map((i) => trial.audio[i])] : [trial.audio[0]];
    const stimulus = (version) => (mushra ? (version === 0 ? null : order[version - 1]) : 0);
    const time = el("span", { class: "time", text: `0.00 / ${fmt(trial.duration)} s` });
    const seek = el("input", { type: "range", class: "seek", min: "0", max: String(trial.duration), step: "0.01", value: "0", "aria-label": "Position (seconds)" });
    const player = new Player({ audio: sources, duration: trial.duration }, (t) => {
      if (document.activeElement !== seek) seek.value = String(t);
      time.textContent = `${fmt(t)} / ${fmt(trial.duration)} s`;
    });
    Player.all.push(player);
    player.load();
    const play = el("button", { type: "button", class: "play", "aria-label": "Play or pause", text: "▶" });
    player.audio.addEventListener("play", () => { play.textContent = "❚❚"; draft.plays += 1; save(); update(); });
    player.audio.addEventListener("playing", () => {
      const index = stimulus(player.version);
      if (index !== null) draft.heard[index] = true;
      save();
      update();
    });
    player.audio.addEventListener("pause", () => { play.textContent = "▶"; });
    play.addEventListener("click", () => player.toggle());
    seek.addEventListener("input", () => player.seek(Number(seek.value)));
    const next = el("button", { type: "button", id: "next", text: state.position + 1 === state.total ? "Finish" : "Next" });
    const hint = el("p", { class: "note", id: "hint", "aria-live": "polite" });
    const heard = (i) => Boolean(draft.heard[i]);
    const answered = (scale) => (draft.ratings[scale.name] || []).length === trial.audio.length &&
                                draft.ratings[scale.name].every((v) => Number.isInteger(v));
    // ACR and P.835: scale k is open once the clip has played (k = 0) or has played again since scale k-1 was answered.
    const open = (k) => heard(0) && (k === 0 || (answered(T.scales[k - 1]) && draft.plays > draft.answered[T.scales[k - 1].name]));
    const rated = () => T.scales.every(answered) && trial.audio.every((_, i) => heard(i));
    let views = [];
    const update = () => {
      next.disabled = !rated();
      if (mushra) {
        views.forEach(({ slider, pick, index }) => { slider.disabled = !heard(index); pick.dataset.heard = String(heard(index)); });
        const missing = order.map((index, k) => (heard(index) ? null : `Sample ${LETTERS[k]}`)).filter(Boolean);
        hint.textContent = missing.length ? `Play every sample before rating it; not played yet: ${missing.join(", ")}.` : "";
      } else {
        views.forEach((fieldset, k) => { fieldset.hidden = !open(k); });
        const waiting = T.scales.findIndex((_, k) => !open(k));
        hint.textContent = waiting < 0 ? "" : waiting === 0 ? "Play the clip, then rate it." :
          `Play the clip again, then rate ${T.scales[waiting].name}: ${T.scales[waiting].question.toLowerCase()}.`;
      }
    };
    const set = (scale, index, value) => {
      const values = draft.ratings[scale] || new Array(trial.audio.length).fill(null);
      values[index] = value;
      draft.ratings[scale] = values;
      if (!(scale in draft.answered)) draft.answered[scale] = draft.plays;
      save();
      update();
    };
    const section = el("section", { id: "trial", "data-trial": trial.id, "aria-labelledby": "trial-title" },
      el("h2", { id: "trial-title", text: heading }));
    if (trial.ask !== undefined) {
      section.append(el("p", { class: "ask", id: "ask", text: `Attention check: whatever you hear, answer ${trial.ask} (${T.scales[0].labels[trial.ask - 1]}) on every scale of this clip.` }));
    }
    section.append(el("div", { class: "transport" }, play, seek, time), player.audio, hint);
    if (mushra) {
      const box = mushraRatings(trial, order, draft, set);
      views = box.views;
      section.append(box.element);
    } else {
      views = T.scales.map((scale) => scaleRatings(scale, draft, set));
      section.append(...views);
    }
    const later = el("button", { type: "button", id: "download-partial", text: "Download my ratings so far" });
    later.addEventListener("click", download);
    next.addEventListener("click", () => {
      if (!rated()) return;
      player.pause();
      state.records.push({ id: trial.id, practice, ratings: draft.ratings, order, ms: Date.now() - draft.started_ms,
                           at_ms: Date.now(), plays: draft.plays });
      state.position += 1;
      state.draft = null;
      save();
      show();
    });
    section.append(el("div", { class: "controls" }, next, later),
                   el("p", { class: "keys", text: mushra ? "Keys: space play/pause · r reference · 1–9 sample" : "Keys: space play/pause" }));
    main.append(section);
    update();
    current = { player, pick: (j) => { player.select(j); markPlaying(section, j); } };
    section.querySelector("h2").setAttribute("tabindex", "-1");
    section.querySelector("h2").focus();
  }

  function markPlaying(section, j) {
    section.querySelectorAll(".pick").forEach((b, i) => b.setAttribute("aria-pressed", String(i === j)));
  }

  // ACR and P.835: one labelled radio group per scale, best answer first. The radios share a name, so the group
  // is one tab stop and the arrow keys move the answer within it (the browser's own radio behaviour).
  function scaleRatings(scale, draft, set) {
    const set_ = el("fieldset", { class: "scale", "data-scale": scale.name }, el("legend", { text: `${scale.name}: ${scale.question}` }));
    for (let v = scale.max; v >= scale.min; v--) {
      const id = `r-${scale.name}-${v}`;
      const radio = el("input", { type: "radio", name: scale.name, id, value: String(v) });
      if ((draft.ratings[scale.name] || [])[0] === v) radio.checked = true;
      radio.addEventListener("change", () => set(scale.name, 0, v));
      set_.append(el("div", {}, radio, el("label", { for: id, text: ` ${v} ${scale.labels[v - scale.min]}` })));
    }
    return set_;
  }

  // MUSHRA: the open reference, then one slider (0-100) per stimulus in the rater's order, each with a button
  // that plays it from the same position. A slider opens once its sample has played, and counts once moved.
  function mushraRatings(trial, order, draft, set) {
    const scale = T.scales[0];
    const box = el("div", { class: "mushra" });
    const reference = el("button", { type: "button", class: "pick", "aria-pressed": "true", text: "Reference" });
    reference.addEventListener("click", () => current.pick(0));
    box.append(el("div", { class: "stimulus" }, reference, el("span", { class: "note", text: "the original: listen to compare" })));
    const views = order.map((index, k) => {
      const name = `Sample ${LETTERS[k]}`;
      const pick = el("button", { type: "button", class: "pick", "aria-pressed": "false", text: `${k + 1} ${name}` });
      pick.addEventListener("click", () => current.pick(k + 1));
      const saved = (draft.ratings[scale.name] || [])[index];
      const slider = el("input", { type: "range", min: String(scale.min), max: String(scale.max), step: "1",
                                   value: String(Number.isInteger(saved) ? saved : 50), "aria-label": `Rating of ${name} (0 bad to 100 excellent)`,
                                   "data-index": String(index) });
      const value = el("output", { text: Number.isInteger(saved) ? String(saved) : "–" });
      slider.addEventListener("input", () => { value.textContent = slider.value; set(scale.name, index, Number(slider.value)); });
      box.append(el("div", { class: "stimulus" }, pick, slider, value));
      return { slider, pick, index };
    });
    box.append(el("p", { class: "note", text: "80–100 excellent · 60–80 good · 40–60 fair · 20–40 poor · 0–20 bad. " +
                                              "One of the samples is the reference itself." }));
    return { element: box, views };
  }

  document.addEventListener("keydown", (event) => {
    const tag = event.target.tagName;
    if (!current || event.altKey || event.ctrlKey || event.metaKey || tag === "INPUT" || tag === "SELECT" || pressesButton(event) ||
        !document.getElementById("trial")) return;
    let handled = true;
    if (event.key === " ") current.player.toggle();
    else if (mushra && event.key === "r") current.pick(0);
    else if (mushra && /^[1-9]$/.test(event.key) && Number(event.key) < current.player.utterance.audio.length) current.pick(Number(event.key));
    else handled = false;
    if (handled) event.preventDefault();
  });
  show();
}

const MODES = { listen: listenView, test: testView };

function about() {
  const parts = [`${DATA.utterances.length} utterance(s)`, `${DATA.versions.length} version(s)`,
                 `scores as sectl eval ${DATA.eval.systems[0].provenance.sectl_version} computes them`];
  document.getElementById("about").textContent = parts.join(" · ");
}

if ((DATA.mode || "listen") === "listen") about();
MODES[DATA.mode || "listen"](document.getElementById("main"));
