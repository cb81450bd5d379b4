// soritune web page: upload or record audio, POST it to the OpenAI-compatible endpoint as
// verbose_json (or stream=true: server-sent events, words shown as they arrive), show transcript,
// a timeline of segments and words, segments and timings. Plain JS, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { blob: null, name: null, recorder: null, chunks: [], stream: null, ready: false, model: "whisper-1" };

function setStatus(text) { $("status").textContent = text; }

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function updateSubmit() { $("submit").disabled = !(state.ready && (state.blob || $("file").files.length)); }

async function checkHealth() {
  try {
    const r = await fetch("/health", { cache: "no-store" });
    const h = await r.json();
    state.model = h.model || state.model;
    $("key-row").hidden = !h.auth;
    if (h.status === "ok") {
      state.ready = true;
      const b = h.backend || {};
      $("server-status").textContent =
        `model ${h.model} · ${b.backend || "?"} on ${b.device || "?"} · batches up to ${h.max_batch} · ` +
        `uploads up to ${h.max_upload_mb} MB`;
      if (h.default_language) selectLanguage(h.default_language);
      loadLanguages();
      updateSubmit();
      return;
    }
    $("server-status").textContent = h.status === "error" ? `model failed to load: ${h.error}` : "model loading…";
  } catch (e) {
    $("server-status").textContent = `server unreachable (${e})`;
  }
  if (!state.ready) setTimeout(checkHealth, 2000);
}

function selectLanguage(code) {
  const sel = $("language");
  if (![...sel.options].some((o) => o.value === code)) sel.add(new Option(code, code));
  sel.value = code;
}

async function loadLanguages() {
  try {
    const r = await fetch("/v1/models", { headers: authHeaders() });
    if (!r.ok) return;
    const card = (await r.json()).data[0];
    const sel = $("language");
    const known = new Set([...sel.options].map((o) => o.value));
    for (const code of card.languages || []) if (!known.has(code)) sel.add(new Option(code, code));
  } catch (e) { /* the short list stays */ }
}

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

$("file").addEventListener("change", () => {
  state.blob = null;
  const f = $("file").files[0];
  if (f) { $("preview").src = URL.createObjectURL(f); $("preview").hidden = false; }
  updateSubmit();
});

$("record").addEventListener("click", async () => {
  showError("");
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    showError("This browser cannot record audio here (recording needs https or localhost).");
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    showError(`Microphone not available: ${e.message || e}`);
    return;
  }
  state.chunks = [];
  state.recorder = new MediaRecorder(state.stream);
  state.recorder.ondataavailable = (ev) => { if (ev.data.size) state.chunks.push(ev.data); };
  state.recorder.onstop = () => {
    const type = state.recorder.mimeType || "audio/webm";
    state.blob = new Blob(state.chunks, { type });
    state.name = type.includes("ogg") ? "recording.ogg" : type.includes("mp4") ? "recording.m4a" : "recording.webm";
    $("file").value = "";
    $("preview").src = URL.createObjectURL(state.blob);
    $("preview").hidden = false;
    $("record-status").textContent = `recorded ${(state.blob.size / 1024).toFixed(0)} KB`;
    state.stream.getTracks().forEach((t) => t.stop());
    updateSubmit();
  };
  state.recorder.start();
  $("record").disabled = true;
  $("stop").disabled = false;
  $("record-status").textContent = "recording…";
});

$("stop").addEventListener("click", () => {
  if (state.recorder && state.recorder.state !== "inactive") state.recorder.stop();
  $("record").disabled = false;
  $("stop").disabled = true;
});

function fmt(x, digits = 0) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }

function render(body, roundTripMs) {
  const transcript = $("transcript");
  transcript.textContent = body.text || "(no speech recognised)";
  transcript.dataset.state = "done";
  const s = body.soritune || {};
  const t = s.timings_ms || {};
  const rows = [
    ["audio duration", `${fmt(body.duration, 2)} s`],
    ["round trip (browser)", `${fmt(roundTripMs)} ms`],
    ["server total", `${fmt(t.total)} ms`],
    ["decode audio", `${fmt(t.decode)} ms`],
    ["wait for batch", `${fmt(t.queue)} ms`],
    ["model inference", `${fmt(t.inference)} ms`],
    ["speed (RTFx)", s.rtfx ? `${fmt(s.rtfx, 1)}× real time` : "–"],
    ["batch size(s)", (s.batch_sizes || []).join(", ") || "–"],
    ["language", body.language],
    ["served model", s.model || state.model],
  ];
  const tb = $("timings").tBodies[0];
  tb.replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement("tr");
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = v;
    return tr;
  }));
  $("segments").tBodies[0].replaceChildren();
  timeline.reset();
  for (const seg of body.segments || []) addSegment(seg);
  for (const w of body.words || []) timeline.word(w);
  timeline.layout(body.duration);
}

function addSegment(seg) {
  const tr = document.createElement("tr");
  tr.insertCell().textContent = fmt(seg.start, 2);
  tr.insertCell().textContent = fmt(seg.end, 2);
  tr.insertCell().textContent = seg.speaker || "";
  tr.insertCell().textContent = seg.text;
  $("segments").tBodies[0].append(tr);
  timeline.segment(seg);
}

// segments (and words) as bars on a time axis scaled to the longest time seen so far
const timeline = {
  items: [],
  reset() { this.items = []; $("timeline").replaceChildren(); },
  segment(seg) { this.add("seg" + (seg.speaker === "customer" ? " customer" : ""), seg.start, seg.end, seg.text); },
  word(w) { this.add("word", w.start, w.end, w.word); },
  add(cls, start, end, title) {
    const el = document.createElement("div");
    el.className = cls;
    el.title = `${fmt(start, 2)}–${fmt(end, 2)} s ${title || ""}`;
    $("timeline").append(el);
    this.items.push({ el, start: Number(start), end: Number(end) });
    this.layout();
  },
  layout(duration) {
    const span = Math.max(duration || 0, ...this.items.map((i) => i.end), 1);
    for (const i of this.items) {
      i.el.style.left = `${(100 * i.start) / span}%`;
      i.el.style.width = `${Math.max(0.3, (100 * (i.end - i.start)) / span)}%`;
    }
  },
};

// stream=true: read the server-sent events, append each word as it arrives
async function streamResponse(r, t0) {
  const transcript = $("transcript");
  transcript.replaceChildren();
  $("segments").tBodies[0].replaceChildren();
  timeline.reset();
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let n = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 2);
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const ev = JSON.parse(line.slice(6));
      if (ev.type === "transcript.text.delta") {
        const span = document.createElement("span");
        span.className = "w new";
        span.textContent = ev.delta;
        span.dataset.start = ev.start;
        transcript.append(span);
        setTimeout(() => span.classList.remove("new"), 50);
        if ($("words").checked) timeline.word({ start: ev.start, end: ev.end, word: ev.delta });
        setStatus(`streaming… ${++n} pieces, ${fmt(performance.now() - t0)} ms`);
      } else if (ev.type === "transcript.text.segment") {
        addSegment(ev);
      } else if (ev.type === "transcript.text.done") {
        transcript.title = ev.text;
        timeline.layout(ev.duration);
      } else if (ev.type === "error") {
        throw new Error(ev.error.message);
      }
    }
  }
  if (!transcript.textContent) transcript.textContent = "(no speech recognised)";
  transcript.dataset.state = "done";
}

$("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("");
  const file = state.blob || $("file").files[0];
  if (!file) return;
  const data = new FormData();
  data.append("file", file, state.blob ? state.name : file.name);
  data.append("model", state.model);
  data.append("language", $("language").value);
  data.append("response_format", "verbose_json");
  const prompt = $("prompt").value.trim();
  if (prompt) data.append("prompt", prompt);
  if ($("words").checked) { data.append("timestamp_granularities[]", "word"); data.append("timestamp_granularities[]", "segment"); }
  if ($("channels").checked) data.append("diarize", "channels");
  const streaming = $("stream").checked;
  if (streaming) data.append("stream", "true");
  $("submit").disabled = true;
  $("transcript").dataset.state = "working";
  setStatus("transcribing…");
  const t0 = performance.now();
  try {
    const r = await fetch(`/v1/audio/${$("task").value}`, { method: "POST", body: data, headers: authHeaders() });
    if (r.ok && streaming) {
      await streamResponse(r, t0);
      setStatus(`done in ${fmt(performance.now() - t0)} ms (streamed)`);
      return;
    }
    const roundTrip = performance.now() - t0;
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      const msg = (body.error && body.error.message) || r.statusText;
      showError(`${r.status}: ${msg}`);
      setStatus("failed");
      $("transcript").dataset.state = "error";
      return;
    }
    render(body, roundTrip);
    setStatus(`done in ${fmt(roundTrip)} ms`);
  } catch (e) {
    showError(`request failed: ${e.message || e}`);
    setStatus("failed");
    $("transcript").dataset.state = "error";
  } finally {
    updateSubmit();
  }
});

checkHealth();
