// sectl report: the page's behaviour. Plain JavaScript, no library and no network: the data is the JSON in
// #report-data (sectl/report/page.py writes it), the audio and spectrograms are files beside the page.
// Each mode of the page is one view function in MODES ("listen" today); a listening test is another mode
// over the same data and the same Player.
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
// keeps the playing position (the reason the page does not use one <audio controls> per file).
class Player {
  constructor(utterance, onTime) {
    this.utterance = utterance;
    this.audio = el("audio", { preload: "none" });
    this.version = 0;
    this.loaded = false;
    this.onTime = onTime;
    this.frame = null;
    this.audio.addEventListener("timeupdate", () => this.onTime(this.audio.currentTime));
    this.audio.addEventListener("play", () => this.tick());
    this.audio.addEventListener("seeked", () => this.onTime(this.audio.currentTime));
  }

  // Only rows near the viewport get a source (IntersectionObserver calls this): hundreds of rows stay light.
  load() {
    if (this.loaded) return;
    this.loaded = true;
    this.audio.preload = "metadata";
    this.audio.src = this.utterance.audio[this.version];
  }

  get playing() {
    return !this.audio.paused;
  }

  play() {
    this.load();
    Player.stopOthers(this);
    return this.audio.play();
  }

  pause() {
    this.audio.pause();
  }

  toggle() {
    return this.playing ? this.pause() : this.play();
  }

  seek(seconds) {
    this.load();
    const end = this.utterance.duration;
    this.audio.currentTime = Math.max(0, Math.min(end, seconds));
    this.onTime(this.audio.currentTime);
  }

  // The new version continues from the same position, playing if the old one was.
  select(index) {
    if (index === this.version || index < 0 || index >= this.utterance.audio.length) return;
    const position = this.audio.currentTime;
    const resume = this.playing;
    this.version = index;
    this.loaded = true;
    this.audio.src = this.utterance.audio[index];
    this.audio.addEventListener("loadedmetadata", () => {
      this.audio.currentTime = position;
      if (resume) this.play();
    }, { once: true });
    this.audio.load();
  }

  tick() {
    cancelAnimationFrame(this.frame);
    const step = () => {
      this.onTime(this.audio.currentTime);
      if (!this.audio.paused) this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  static stopOthers(current) {
    for (const player of Player.all) if (player !== current && player.playing) player.pause();
  }
}
Player.all = [];

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
      if (Number.isNaN(x)) return 1;
      if (Number.isNaN(y)) return -1;
      return sign * (x - y);
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
  return table;
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
  const showVersion = () => rows.forEach((row, j) => {
    row.classList.toggle("current", j === player.version);
    row.querySelector(".pick").setAttribute("aria-checked", String(j === player.version));
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
      const t = utterance.duration * (event.clientX - box.left) / box.width;
      if (player.audio.readyState > 0) player.seek(t);
      else player.audio.addEventListener("loadedmetadata", () => player.seek(t), { once: true });
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
  showVersion();
  article.append(el("h3", { text: utterance.name }), el("div", { class: "transport" }, play, seek, time), player.audio, group);
  const view = {
    article, player, utterance,
    reveal() { player.load(); for (const img of images) if (!img.src) img.src = img.dataset.src; },
    pick(j) { player.select(j); showVersion(); },
  };
  return view;
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
      if (!name) return a.utterance.name.localeCompare(b.utterance.name);
      const x = score(a), y = score(b);
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return sign * (x - y) || a.utterance.name.localeCompare(b.utterance.name);
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
    if (!active || event.altKey || event.ctrlKey || event.metaKey || target.tagName === "SELECT") return;
    const player = active.player;
    let handled = true;
    if (event.key === " ") player.toggle();
    else if (/^[1-9]$/.test(event.key)) active.pick(Number(event.key) - 1);
    else if (event.key === "ArrowLeft") player.seek(player.audio.currentTime - SEEK_STEP_S);
    else if (event.key === "ArrowRight") player.seek(player.audio.currentTime + SEEK_STEP_S);
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

const MODES = { listen: listenView };

function about() {
  const parts = [`${DATA.utterances.length} utterance(s)`, `${DATA.versions.length} version(s)`,
                 `scores as sectl eval ${DATA.eval.systems[0].provenance.sectl_version} computes them`];
  document.getElementById("about").textContent = parts.join(" · ");
}

about();
MODES[DATA.mode || "listen"](document.getElementById("main"));
