// tollgate — the live-tail page behind a shared link. The shared token travels in the
// URL's fragment (#token=…), which browsers never send to a server: it stays out of
// access logs and Referer headers. The page streams GET /v1/tail as NDJSON with the
// token as a Bearer credential and shows what arrives; the stream's first line says
// what the link shows (its filters), and its last line why it ended.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  /// Records kept on the page (and held while paused): the oldest go first.
  const MAX_KEPT = 1000;
  const link = new URLSearchParams(location.hash.slice(1));
  const token = link.get("token");
  /// The account's name, as the Manage Tokens page put it in the link (a label: what the
  /// page shows is the gateway's to decide, by the token).
  const accountName = link.get("account");
  const list = $("records");
  let paused = false;
  let held = [];
  let shown = 0;
  let skipped = 0;
  let failures = 0;
  let ended = false;

  const setStatus = (kind, text) => {
    const s = $("status");
    s.className = `status ${kind}`;
    s.textContent = text;
  };
  const say = (text, gone) => {
    const m = $("message");
    m.textContent = text || "";
    m.hidden = !text;
    m.classList.toggle("gone", Boolean(gone));
  };
  const updateCounts = () => {
    const parts = [`${shown} shown`];
    if (held.length) { parts.push(`${held.length} new while paused`); }
    if (skipped) { parts.push(`${skipped} skipped (arriving faster than shown)`); }
    $("counts").textContent = parts.join(" · ");
  };

  /// Times in UTC, as the Manage Tokens page writes them: "2026-12-06 15:32 UTC".
  const two = (n) => String(n).padStart(2, "0");
  const utcTime = (d) => `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
  const utcDate = (d) => `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())}`;
  const utc = (ms) => { const d = new Date(ms); return `${utcDate(d)} ${utcTime(d)} UTC`; };

  /// How far off `ms` is, counted as the Manage Tokens page counts it: whole days ("in 30
  /// days" until the 31st day starts), hours and minutes within the last day.
  const inWords = (ms) => {
    if (ms <= 0) { return "expired"; }
    const minutes = Math.floor(ms / 60000);
    const days = Math.floor(minutes / 1440);
    if (days >= 1) { return days === 1 ? "in 1 day" : `in ${days} days`; }
    return minutes >= 60 ? `in ${Math.floor(minutes / 60)} h` : `in ${minutes} min`;
  };

  const showScope = (scope) => {
    const ids = scope.accountIds.join(", ");
    $("account").textContent = accountName ? `${accountName} (account ${ids})` : `Account ${ids}`;
    const filters = $("filters");
    filters.replaceChildren();
    if (!scope.filters.length) {
      filters.textContent = "None: every log of the account";
    }
    scope.filters.forEach((f, i) => {
      if (i > 0) {
        const op = document.createElement("span");
        op.className = "op";
        op.textContent = scope.filtersOperator;
        filters.append(op);
      }
      const code = document.createElement("code");
      code.textContent = `${f.field}: ${f.value}`;
      filters.append(code);
    });
    $("expires").textContent = scope.expiresAt
      ? `${utc(scope.expiresAt)} (${inWords(scope.expiresAt - Date.now())})`
      : "Never";
  };

  const append = (record) => {
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    const li = document.createElement("li");
    const time = document.createElement("time");
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = `${utcTime(now)}:${two(now.getUTCSeconds())}`;
    const text = document.createElement("span");
    text.textContent = JSON.stringify(record);
    li.append(time, text);
    list.append(li);
    while (list.children.length > MAX_KEPT) { list.firstElementChild.remove(); }
    $("empty").hidden = true;
    shown += 1;
    if (nearBottom) { list.scrollTop = list.scrollHeight; }
  };

  /// Why a stream ended, in the viewer's words; `again`: reconnect rather than stop.
  const ENDINGS = {
    expired: { text: "This link has expired: it no longer shows logs." },
    revoked: { text: "This link no longer works: its shared token was deleted." },
    "no longer granted": { text: "This link no longer shows logs: its access was changed." },
    "not usable": { text: "This link no longer shows logs: the account's plan does not allow it." },
    "too slow": { text: "The page fell behind the stream; reconnecting…", again: true },
    "shutting down": { text: "The gateway is restarting; reconnecting…", again: true },
  };

  const stop = (text) => {
    ended = true;
    setStatus("ended", "Ended");
    say(text, true);
    $("pause").disabled = true;
  };

  const retry = (text, delay) => {
    failures += 1;
    setStatus("connecting", "Reconnecting…");
    say(text);
    setTimeout(connect, delay ?? Math.min(1000 * 2 ** (failures - 1), 30000));
  };

  /// One line of the stream; returns an ending when the stream ends.
  const onLine = (value) => {
    if ("_scope" in value) {
      showScope(value._scope);
    } else if ("_dropped" in value) {
      skipped += value._dropped;
    } else if ("_end" in value) {
      return ENDINGS[value._end] ?? { text: `The stream ended: ${value._end}.` };
    } else if (paused) {
      held.push(value);
      if (held.length > MAX_KEPT) { held.shift(); }
    } else {
      append(value);
    }
    updateCounts();
    return null;
  };

  async function connect() {
    let res;
    try {
      res = await fetch("/v1/tail", {
        headers: { Authorization: `Bearer ${token}`, Accept: "application/x-ndjson" },
        cache: "no-store",
      });
    } catch {
      return retry("The gateway cannot be reached; retrying…");
    }
    if (res.status === 401) {
      return stop("This link does not work: its shared token was deleted, or the link is incomplete.");
    }
    if (res.status === 403) {
      const body = await res.json().catch(() => ({}));
      return stop(/expired/.test(body.error ?? "") ? ENDINGS.expired.text
        : `This link cannot show logs: ${body.error ?? "refused"}.`);
    }
    if (res.status === 503) {
      const after = Number(res.headers.get("retry-after")) || 5;
      return retry("Too many live tails are open right now; retrying…", after * 1000);
    }
    if (!res.ok) { return retry(`The gateway answered ${res.status}; retrying…`); }

    failures = 0;
    setStatus(paused ? "paused" : "live", paused ? "Paused" : "Live");
    say("");
    $("pause").disabled = false;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let ending = null;
    try {
      while (!ending) {
        const { value, done } = await reader.read();
        if (done) { break; }
        buffer += value;
        let newline;
        while (!ending && (newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line) { ending = onLine(JSON.parse(line)); }
        }
      }
    } catch {
      // The connection broke: treated as an interruption below.
    }
    if (ending && !ending.again) { return stop(ending.text); }
    return retry(ending?.text ?? "The stream was interrupted; reconnecting…", ending ? 500 : undefined);
  }

  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      held.forEach(append);
      held = [];
    }
    if (!ended) { setStatus(paused ? "paused" : "live", paused ? "Paused" : "Live"); }
    updateCounts();
  });
  $("clear").addEventListener("click", () => {
    list.replaceChildren();
    held = [];
    shown = 0;
    $("empty").hidden = false;
    updateCounts();
  });

  updateCounts();
  if (!token) {
    stop("This link is incomplete: it carries no token. Ask whoever shared it for the whole link.");
  } else {
    connect();
  }
})();
