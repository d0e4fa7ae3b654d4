// The dispatcher's console: a client of the ops API, nothing more. Every string from the API is put on the
// page as text (never as HTML), so a customer named <img src=x onerror=...> is shown as written.
"use strict";

(() => {
  const REFRESH_MS = 10000;
  const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const state = {
    config: { api: "", signIn: "local" },
    token: sessionStorage.getItem("desk.token"),
    email: sessionStorage.getItem("desk.email"),
    serverOffset: 0, // server now - browser now, in ms: the desk's clock (the local runner's may be set)
    route: null,
    seq: 0, // bumped by each navigation: a slower answer for a screen no longer shown is dropped
    timer: null,
    attention: [],
  };

  // -- small helpers ------------------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const now = () => new Date(Date.now() + state.serverOffset);

  function fmt(iso, zone, options = {}) {
    if (!iso) return "";
    return new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      hour: "2-digit",
      minute: "2-digit",
      ...options,
    }).format(new Date(iso));
  }

  function fmtDay(date, zone) {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, weekday: "long", day: "numeric", month: "long", year: "numeric",
    }).format(date);
  }

  function zoneName(zone, iso) {
    const parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, timeZoneName: "short" })
      .formatToParts(new Date(iso || Date.now()));
    return (parts.find((p) => p.type === "timeZoneName") || { value: zone }).value;
  }

  /** "10:00 (16:00 CET for the customer)" when the zones differ, else "10:00". */
  function when(iso, customerZone, options = {}) {
    const mine = fmt(iso, ZONE, options);
    if (!customerZone || customerZone === ZONE) return mine;
    const theirs = fmt(iso, customerZone, options);
    if (theirs === mine) return mine;
    return `${mine} (${theirs} ${zoneName(customerZone, iso)} for the customer)`;
  }

  function countdown(iso) {
    const ms = new Date(iso) - now();
    const minutes = Math.round(Math.abs(ms) / 60000);
    const text = minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`;
    return ms >= 0 ? `in ${text}` : `${text} ago`;
  }

  function words(name) {
    return String(name || "").replaceAll("_", " ").replaceAll("-", " ");
  }

  function say(message, kind = "info") {
    const box = $("status");
    box.className = `status ${kind}`;
    box.textContent = message;
  }

  // Local days in the dispatcher's zone, as UTC instants for the API.
  function dayKey(date) {
    const parts = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(date);
    return parts; // YYYY-MM-DD
  }

  function zoneOffsetMs(date) {
    const local = new Date(date.toLocaleString("en-US", { timeZone: ZONE }));
    const utc = new Date(date.toLocaleString("en-US", { timeZone: "UTC" }));
    return local - utc;
  }

  function dayBounds(key) {
    const [y, m, d] = key.split("-").map(Number);
    const guess = new Date(Date.UTC(y, m - 1, d));
    const start = new Date(guess.getTime() - zoneOffsetMs(guess));
    const next = new Date(Date.UTC(y, m - 1, d + 1));
    const end = new Date(next.getTime() - zoneOffsetMs(next));
    return [start, end];
  }

  function shiftDay(key, days) {
    const [y, m, d] = key.split("-").map(Number);
    const date = new Date(Date.UTC(y, m - 1, d + days, 12));
    return date.toISOString().slice(0, 10);
  }

  // -- the API ------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || `the desk answered ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, body, headers = {}) {
    const response = await fetch(state.config.api + path, {
      method,
      headers: {
        // API Gateway's Cognito authorizer takes the ID token as it is; the local runner takes either form.
        Authorization: state.config.signIn === "cognito" ? state.token : `Bearer ${state.token}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let document = null;
    try {
      document = text ? JSON.parse(text) : null;
    } catch {
      document = null;
    }
    if (response.status === 401) {
      signOut("Your sign-in has ended: sign in again.");
      throw new ApiError(401, document);
    }
    if (!response.ok) throw new ApiError(response.status, document);
    return document;
  }

  // -- sign-in ------------------------------------------------------------------------------------------

  async function signIn(event) {
    event.preventDefault();
    const email = $("sign-in-email").value.trim();
    if (!email) return;
    try {
      const response = await fetch("/_local/console/sign-in", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email }),
      });
      if (!response.ok) throw new Error(`sign-in answered ${response.status}`);
      const answer = await response.json();
      remember(answer.token, answer.email);
      start();
    } catch (error) {
      say(`Could not sign in: ${error.message}`, "error");
    }
  }

  function remember(token, email) {
    state.token = token;
    state.email = email;
    sessionStorage.setItem("desk.token", token);
    sessionStorage.setItem("desk.email", email);
  }

  function signOut(message) {
    state.token = null;
    sessionStorage.removeItem("desk.token");
    sessionStorage.removeItem("desk.email");
    clearInterval(state.timer);
    showSignIn();
    if (message) say(message, "error");
  }

  // Cognito's hosted sign-in (AWS): authorization code with PKCE, then the id token as the bearer.
  async function cognitoSignIn() {
    const { domain, clientId, redirectUri, scopes } = state.config.cognito;
    const redirect = redirectUri || `${location.origin}${location.pathname}`;
    const params = new URLSearchParams(location.search);
    if (params.has("code")) {
      const verifier = sessionStorage.getItem("desk.verifier");
      const base = domain.startsWith("https://") ? domain : `https://${domain}`;
      const response = await fetch(`${base}/oauth2/token`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code", client_id: clientId, code: params.get("code"),
          redirect_uri: redirect, code_verifier: verifier || "",
        }),
      });
      if (!response.ok) throw new Error("the sign-in could not be completed");
      const tokens = await response.json();
      const claims = JSON.parse(atob(tokens.id_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
      remember(tokens.id_token, claims.email || "");
      history.replaceState(null, "", redirect + (location.hash || "#/today"));
      return true;
    }
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const verifier = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    sessionStorage.setItem("desk.verifier", verifier);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
    const challenge = btoa(String.fromCharCode(...digest)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    const base = domain.startsWith("https://") ? domain : `https://${domain}`;
    location.assign(`${base}/oauth2/authorize?${new URLSearchParams({
      response_type: "code", client_id: clientId, redirect_uri: redirect,
      scope: Array.isArray(scopes) ? scopes.join(" ") : "openid email",
      code_challenge_method: "S256", code_challenge: challenge,
    })}`);
    return false;
  }

  function showSignIn() {
    $("nav").hidden = true;
    $("who").hidden = true;
    $("screen").replaceChildren();
    $("sign-in").hidden = false;
    $("sign-in-email").focus();
  }

  // -- the frame ----------------------------------------------------------------------------------------

  function start() {
    $("sign-in").hidden = true;
    $("nav").hidden = false;
    $("who").hidden = false;
    $("signed-in-as").textContent = state.email || "";
    clearInterval(state.timer);
    state.timer = setInterval(refresh, REFRESH_MS);
    route();
  }

  function parseRoute() {
    const hash = location.hash.replace(/^#\/?/, "") || "today";
    const [path, query] = hash.split("?");
    const [screen, ...rest] = path.split("/");
    return { screen, arg: rest.join("/"), params: new URLSearchParams(query || "") };
  }

  async function route() {
    if (!state.token) return showSignIn();
    state.route = parseRoute();
    state.seq += 1;
    for (const link of document.querySelectorAll("nav a")) {
      link.removeAttribute("aria-current");
    }
    const current = $(`nav-${state.route.screen}`);
    if (current) current.setAttribute("aria-current", "page");
    const screen = $("screen");
    screen.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
    try {
      await render(true);
    } catch (error) {
      showError(error);
    }
  }

  async function render(first) {
    const seq = state.seq;
    const { screen, arg, params } = state.route;
    await loadAttention();
    if (seq !== state.seq) return undefined;
    if (screen === "attention") return renderAttention(first);
    if (screen === "appointment") return renderAppointment(arg, first, seq);
    if (screen === "search") return renderSearch(params, first, seq);
    return renderToday(params.get("day"), first, seq);
  }

  async function refresh() {
    if (!state.token || !state.route) return;
    try {
      await render(false);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) say(`Could not refresh: ${error.message}`, "error");
    }
  }

  function showError(error) {
    $("screen").replaceChildren(
      el("div", { class: "card error", role: "alert" },
        el("p", { text: `Something went wrong: ${error.message}` }),
        el("button", { type: "button", onclick: route, text: "Try again" })),
    );
  }

  async function loadAttention() {
    const answer = await api("GET", "/attention");
    state.serverOffset = new Date(answer.now) - new Date();
    state.attention = answer.items || [];
    $("attention-count").textContent = state.attention.length ? `(${state.attention.length})` : "";
    $("clock").textContent = `${fmt(now().toISOString(), ZONE, { weekday: "short" })} ${zoneName(ZONE)}`;
  }

  // -- Today --------------------------------------------------------------------------------------------

  async function renderToday(day, _first, seq) {
    const key = day || dayKey(now());
    const [from, to] = dayBounds(key);
    const list = await api("GET", `/appointments?from=${from.toISOString()}&to=${to.toISOString()}&limit=200`);
    if (seq !== state.seq) return;
    const items = list.items || [];
    const lanes = new Map([["Unassigned", []]]);
    for (const item of items) {
      const primary = item.technicians.find((t) => t.primary) || item.technicians[0];
      const lane = primary ? primary.name : "Unassigned";
      if (!lanes.has(lane)) lanes.set(lane, []);
      lanes.get(lane).push(item);
    }
    const byId = new Map(state.attention.map((a) => [a.appointment_id, a]));
    const heading = el("h2", { id: "today-title", text: `Today: ${fmtDay(from, ZONE)}` });
    const navigation = el("div", { class: "daynav" },
      el("a", { href: `#/today?day=${shiftDay(key, -1)}`, id: "day-previous", text: "← Previous day" }),
      el("a", { href: "#/today", id: "day-today", text: "Today" }),
      el("a", { href: `#/today?day=${shiftDay(key, 1)}`, id: "day-next", text: "Next day →" }));
    const board = el("div", { class: "lanes", id: "lanes" });
    for (const [name, appointments] of lanes) {
      const lane = el("section", { class: "lane", "aria-label": `${name}: ${appointments.length} appointments` },
        el("h3", { text: `${name} (${appointments.length})` }));
      const listNode = el("ol", { class: "slots" });
      for (const item of appointments.sort((a, b) => a.start.localeCompare(b.start))) {
        listNode.append(el("li", {}, appointmentCard(item, byId.get(item.id))));
      }
      if (!appointments.length) listNode.append(el("li", { class: "muted", text: "Nothing booked." }));
      lane.append(listNode);
      board.append(lane);
    }
    $("screen").replaceChildren(heading, navigation,
      items.length ? board : el("p", { class: "muted", text: "No appointments this day." }));
  }

  function appointmentCard(item, attention) {
    const link = el("a", { href: `#/appointment/${encodeURIComponent(item.id)}`, class: "card-link" },
      el("span", { class: "time", text: when(item.start, item.timezone) }),
      el("span", { class: "customer", text: item.customer.name }),
      el("span", { class: "type", text: words(item.type) }));
    const card = el("article", { class: `slot status-${item.status}`, "data-appointment": item.id },
      link, el("span", { class: "badge", text: words(item.status) }));
    if (attention && attention.kind === "unassigned_soon") {
      card.append(el("p", { class: "countdown" },
        attention.pre_notice_at ? `Pre-notice ${countdown(attention.pre_notice_at)}. ` : "",
        attention.auto_cancel_at ? `Auto-cancel ${countdown(attention.auto_cancel_at)}.` : ""));
    }
    return card;
  }

  // -- Needs attention ----------------------------------------------------------------------------------

  const KIND_WORDS = {
    unassigned_soon: "Nobody assigned",
    at_risk: "At risk: too late to auto-cancel",
    unassigned_at_start: "Started with nobody assigned",
    mail_failed: "A mail failed",
    mail_bounced: "A mail bounced",
    psa_writeback_failed: "The PSA ticket could not be updated",
    unmatched: "An event waits for its booking",
  };

  function renderAttention() {
    const heading = el("h2", { id: "attention-title", text: "Needs attention" });
    if (!state.attention.length) {
      return $("screen").replaceChildren(heading, el("p", { class: "muted", text: "Nothing needs you right now." }));
    }
    const listNode = el("ol", { class: "attention", id: "attention-list" });
    for (const item of state.attention) {
      const title = KIND_WORDS[item.kind] || words(item.kind);
      const row = el("li", { class: `item kind-${item.kind}`, "data-kind": item.kind, "data-appointment": item.appointment_id || "" },
        el("h3", {}, title),
        item.customer ? el("p", { class: "customer", text: item.customer }) : null,
        item.start ? el("p", { text: `Starts ${when(item.start, item.timezone, { weekday: "short" })}` }) : null,
        item.pre_notice_at ? el("p", { class: "countdown", text: `Pre-notice ${countdown(item.pre_notice_at)}` }) : null,
        item.auto_cancel_at ? el("p", { class: "countdown", text: `Auto-cancel ${countdown(item.auto_cancel_at)}` }) : null,
        item.detail ? el("p", { class: "detail", text: item.detail }) : null);
      if (item.appointment_id) {
        const action = item.action || "open";
        row.append(el("a", {
          class: "button", href: `#/appointment/${encodeURIComponent(item.appointment_id)}?action=${encodeURIComponent(action)}`,
          text: action === "open" ? "Open" : `${words(action)[0].toUpperCase()}${words(action).slice(1)}…`,
        }));
      }
      listNode.append(row);
    }
    $("screen").replaceChildren(heading, listNode);
  }

  // -- Search -------------------------------------------------------------------------------------------

  async function renderSearch(params, first, seq) {
    const q = params.get("q") || "";
    if (first || !$("search-form")) {
      const input = el("input", { id: "search-q", name: "q", type: "search", value: q, minlength: "2", required: true });
      const form = el("form", { id: "search-form", class: "card", role: "search" },
        el("label", { for: "search-q", text: "Customer name or email, ticket number, or external id (calcom:…)" }),
        input, el("button", { type: "submit", id: "search-submit", text: "Search" }));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        location.hash = `#/search?q=${encodeURIComponent(input.value.trim())}`;
      });
      $("screen").replaceChildren(el("h2", { text: "Search" }), form, el("div", { id: "search-results" }));
      if (first) input.focus();
    }
    if (q.length < 2) return;
    const external = /^[a-z]+:\S+$/.test(q) && !q.includes("@");
    const answer = await api("GET", external
      ? `/appointments?external_id=${encodeURIComponent(q)}`
      : `/appointments?q=${encodeURIComponent(q)}&limit=100`);
    if (seq !== state.seq) return;
    const results = el("ol", { class: "results", id: "search-list" });
    for (const item of answer.items || []) {
      results.append(el("li", {}, appointmentCard(item, null),
        el("span", { class: "muted", text: ` ${fmtDay(new Date(item.start), ZONE)}` })));
    }
    $("search-results").replaceChildren(
      el("p", { role: "status", text: `${(answer.items || []).length} found for “${q}”.` }), results);
  }

  // -- Appointment --------------------------------------------------------------------------------------

  const ACTION_FORMS = {
    reschedule: { label: "Reschedule", path: "reschedule", mail: "the new time, with a calendar update",
      fields: [["start", "New start", "datetime-local", true], ["message", "Message to the customer", "textarea"]] },
    request_reschedule: { label: "Request reschedule", path: "request-reschedule", mail: "a request to pick a new time",
      fields: [["message", "Message to the customer", "textarea"]] },
    reassign: { label: "Reassign", path: "reassign", mail: "who is coming now",
      fields: [["technician_id", "Technician id", "text", true], ["technician_name", "Technician name", "text", true],
        ["technician_email", "Technician email", "email"], ["message", "Message to the customer", "textarea"]] },
    confirm: { label: "Confirm", path: "confirm", mail: "the confirmation", fields: [["message", "Message to the customer", "textarea"]] },
    cancel: { label: "Cancel", path: "cancel", mail: "the cancellation, with the coupon if offered",
      fields: [["reason", "Reason (internal)", "text", true], ["message", "Message to the customer", "textarea"],
        ["offer_discount", "Offer the coupon", "checkbox"]] },
    complete: { label: "Complete", path: "complete", mail: null,
      fields: [["duration_minutes", "Minutes worked", "number", true], ["outcome", "Outcome", "text", true], ["reason", "Reason", "text"]] },
    reopen: { label: "Reopen", path: "reopen", mail: null, fields: [] },
    no_show: { label: "No-show", path: "no-show", mail: null, fields: [["note", "Note", "text"]] },
    check_in: { label: "Check in", path: "check-in", mail: null, fields: [] },
    note: { label: "Note", path: "notes", mail: null, fields: [["text", "Internal note", "textarea", true]] },
    contact_attempt: { label: "Contact attempt", path: "contact-attempts", mail: "the booking link (unless reached)",
      fields: [["outcome", "Outcome", "select:voicemail,busy,no_answer,reached", true], ["note", "Note", "text"]] },
    hold: { label: "Hold", path: "hold", mail: null, fields: [["on", "Keep on schedule (no auto-cancel)", "checkbox"], ["reason", "Reason", "text"]] },
    defer: { label: "Defer", path: "defer", mail: "the new time", fields: [["weeks", "Weeks", "number"], ["message", "Message to the customer", "textarea"]] },
  };

  async function renderAppointment(id, first, seq) {
    const detail = await api("GET", `/appointments/${encodeURIComponent(id)}`);
    if (seq !== state.seq) return;
    const screen = $("screen");
    const known = screen.dataset.appointment === id ? Number(screen.dataset.version) : null;
    const dirty = [...screen.querySelectorAll("form.action")].some((form) => form.dataset.dirty === "true");
    if (!first && known === detail.version) return; // nothing changed: leave the page (and any form) alone
    if (!first && dirty) {
      // Never lose a half-typed form: say it changed, and let the dispatcher reload when ready.
      if (!$("changed-banner")) {
        screen.prepend(el("div", { id: "changed-banner", class: "card warning", role: "alert" },
          el("p", { text: "This appointment changed since you opened it." }),
          el("button", { type: "button", id: "changed-reload", onclick: () => render(true), text: "Reload it" })));
      }
      return;
    }
    screen.dataset.appointment = id;
    screen.dataset.version = String(detail.version);
    const facts = el("dl", { class: "facts" },
      fact("Status", words(detail.status)),
      fact("When", `${when(detail.start, detail.timezone, { weekday: "long", day: "numeric", month: "long" })} – ${fmt(detail.end, ZONE)}`),
      fact("Customer's zone", detail.timezone),
      fact("Type", words(detail.type)),
      fact("Customer", [detail.customer.name, detail.customer.email, detail.customer.phone, detail.customer.company].filter(Boolean).join(" · ")),
      fact("Technicians", detail.technicians.map((t) => `${t.name}${t.primary ? " (primary)" : ""}`).join(", ") || "Nobody assigned"),
      fact("Ticket", detail.ticket ? `${detail.ticket.system} ${detail.ticket.number || detail.ticket.id}` : "None"),
      fact("External ids", detail.external_ids.join(", ") || "None"),
      fact("Links", [detail.links.reschedule, detail.links.cancel].filter(Boolean).join(" · ") || "None"),
      detail.cancellation ? fact("Cancelled", `by ${detail.cancellation.by}: ${detail.cancellation.reason}${detail.cancellation.coupon ? ` · coupon ${detail.cancellation.coupon.code} (${detail.cancellation.coupon.percent}%)` : ""}`) : null,
      detail.hold ? fact("On hold", detail.hold.reason || "yes") : null);
    const answers = detail.answers.length
      ? el("section", { "aria-labelledby": "answers-title" }, el("h3", { id: "answers-title", text: "Questionnaire" }),
        el("dl", { class: "facts" }, detail.answers.map((a) => fact(a.question, a.answer))))
      : null;
    const metadata = Object.keys(detail.metadata || {}).length
      ? el("section", { "aria-labelledby": "metadata-title" }, el("h3", { id: "metadata-title", text: "Metadata" }),
        el("pre", { class: "metadata", text: JSON.stringify(detail.metadata, null, 2) }))
      : null;
    const notes = el("section", { "aria-labelledby": "notes-title" }, el("h3", { id: "notes-title", text: "Notes and calls" }),
      el("ul", { class: "plain" },
        detail.notes.map((n) => el("li", {}, `${fmt(n.at, ZONE, { weekday: "short" })} · ${n.author}: ${n.text}`)),
        detail.contact_attempts.map((c) => el("li", {}, `${fmt(c.at, ZONE, { weekday: "short" })} · ${c.by}: called, ${words(c.outcome)}${c.note ? ` (${c.note})` : ""}`)),
        !detail.notes.length && !detail.contact_attempts.length ? el("li", { class: "muted", text: "None yet." }) : null));
    const timeline = el("ol", { class: "timeline", id: "timeline" },
      detail.history.map((entry) => el("li", { "data-action": entry.action },
        el("time", { datetime: entry.at, text: fmt(entry.at, ZONE, { weekday: "short", day: "numeric", month: "short" }) }),
        el("strong", { text: ` ${words(entry.action)}` }),
        el("span", { class: "actor", text: ` by ${entry.actor.id}` }),
        entry.from_status !== entry.to_status && entry.from_status
          ? el("span", { class: "muted", text: ` (${words(entry.from_status)} → ${words(entry.to_status)})` }) : null,
        summary(entry.detail))));
    const actions = el("section", { class: "actions", "aria-labelledby": "actions-title" },
      el("h3", { id: "actions-title", text: "Actions" }),
      detail.allowed_actions.length
        ? el("div", { class: "action-buttons" }, detail.allowed_actions.filter((a) => ACTION_FORMS[a]).map((action) =>
          el("button", { type: "button", class: "action-open", id: `open-${action}`, "aria-expanded": "false",
            onclick: (event) => openForm(detail, action, event.currentTarget), text: ACTION_FORMS[action].label })))
        : el("p", { class: "muted", text: "No action is possible: the appointment is cancelled." }),
      el("div", { id: "action-form" }));
    screen.replaceChildren(
      el("p", {}, el("a", { href: "#/today", text: "← Today" })),
      el("h2", { id: "appointment-title", tabindex: "-1", text: `${detail.customer.name}, ${when(detail.start, detail.timezone, { weekday: "short" })}` }),
      el("div", { class: "columns" },
        el("div", {}, facts, answers, metadata, notes),
        el("div", {}, actions, el("section", { "aria-labelledby": "history-title" },
          el("h3", { id: "history-title", text: "History" }), timeline))));
    const wanted = state.route.params.get("action");
    if (first && wanted && detail.allowed_actions.includes(wanted)) openForm(detail, wanted, $(`open-${wanted}`));
    else if (first) $("appointment-title").focus();
  }

  function fact(name, value) {
    return [el("dt", { text: name }), el("dd", { text: value || "" })];
  }

  function summary(detail) {
    if (!detail) return null;
    const parts = [];
    for (const key of ["reason", "message", "note", "outcome", "by", "kind", "status", "system"]) {
      if (detail[key] !== undefined && detail[key] !== null && typeof detail[key] !== "object") parts.push(`${words(key)}: ${detail[key]}`);
    }
    if (detail.coupon && detail.coupon.code) parts.push(`coupon: ${detail.coupon.code} (${detail.coupon.percent}%)`);
    return parts.length ? el("div", { class: "muted", text: parts.join(" · ") }) : null;
  }

  function openForm(detail, action, opener) {
    const spec = ACTION_FORMS[action];
    for (const button of document.querySelectorAll(".action-open")) button.setAttribute("aria-expanded", "false");
    if (opener) opener.setAttribute("aria-expanded", "true");
    const form = el("form", { class: "action card", id: `form-${action}`, "data-action": action, "aria-label": spec.label });
    form.append(el("h4", { text: spec.label }));
    for (const [name, label, type, required] of spec.fields) {
      const id = `${action}-${name}`;
      let input;
      if (type === "textarea") input = el("textarea", { id, name, rows: "3", required });
      else if (type.startsWith("select:")) {
        input = el("select", { id, name, required }, type.slice(7).split(",").map((v) => el("option", { value: v, text: words(v) })));
      } else input = el("input", { id, name, type, required, min: type === "number" ? "0" : null });
      if (name === "start") input.value = localInput(detail.start);
      if (name === "on") input.checked = !detail.hold;
      if (name === "offer_discount") input.checked = !detail.discount;
      const row = type === "checkbox"
        ? el("div", { class: "check" }, input, el("label", { for: id, text: label }))
        : el("div", {}, el("label", { for: id, text: label }), input);
      form.append(row);
    }
    if (action === "cancel") {
      form.append(el("p", { class: "muted", id: "cancel-coupon-hint",
        text: detail.discount ? `The customer already has a ${detail.discount.percent}% discount: no new coupon.`
          : "A coupon is offered with the cancellation mail when the box is ticked." }));
    }
    const preview = spec.mail ? el("div", { class: "preview", id: `${action}-preview`, "aria-live": "polite" }) : null;
    if (preview) {
      form.append(el("h5", { text: "The customer will receive" }), preview);
      const update = () => {
        const message = form.elements.message ? form.elements.message.value.trim() : "";
        preview.replaceChildren(el("p", { text: `A mail to ${detail.customer.email || "(no email: nothing is sent)"}: ${spec.mail}.` }),
          message ? el("blockquote", { text: message }) : el("p", { class: "muted", text: "No message of yours." }));
      };
      form.addEventListener("input", update);
      update();
    }
    form.addEventListener("input", () => { form.dataset.dirty = "true"; });
    form.append(el("div", { class: "buttons" },
      el("button", { type: "submit", id: `${action}-submit`, text: spec.label }),
      el("button", { type: "button", class: "secondary", id: `${action}-close`, text: "Close",
        onclick: () => { $("action-form").replaceChildren(); if (opener) { opener.setAttribute("aria-expanded", "false"); opener.focus(); } } })));
    form.addEventListener("submit", (event) => submitAction(event, detail, action, form));
    $("action-form").replaceChildren(form);
    const firstInput = form.querySelector("input, textarea, select, button[type=submit]");
    if (firstInput) firstInput.focus();
  }

  function localInput(iso) {
    const date = new Date(iso);
    const local = new Date(date.getTime() + zoneOffsetMs(date));
    return local.toISOString().slice(0, 16);
  }

  function fromLocalInput(value) {
    const [day, time] = value.split("T");
    const [y, m, d] = day.split("-").map(Number);
    const [hh, mm] = time.split(":").map(Number);
    const guess = new Date(Date.UTC(y, m - 1, d, hh, mm));
    return new Date(guess.getTime() - zoneOffsetMs(guess)).toISOString();
  }

  function bodyOf(action, form, detail) {
    const value = (name) => (form.elements[name] ? form.elements[name].value.trim() : "");
    const optional = (name) => value(name) || undefined;
    switch (action) {
      case "reschedule": {
        const start = fromLocalInput(value("start"));
        const length = new Date(detail.end) - new Date(detail.start);
        return { start, end: new Date(new Date(start).getTime() + length).toISOString(), message: optional("message") };
      }
      case "reassign":
        return {
          technicians: [{ id: value("technician_id"), name: value("technician_name"), email: optional("technician_email") }],
          message: optional("message"),
        };
      case "cancel":
        return { reason: value("reason"), message: optional("message"), offer_discount: form.elements.offer_discount.checked };
      case "complete":
        return { duration_minutes: Number(value("duration_minutes")), outcome: value("outcome"), reason: optional("reason") };
      case "no_show":
        return { note: optional("note") };
      case "note":
        return { text: value("text") };
      case "contact_attempt":
        return { outcome: value("outcome"), note: optional("note") };
      case "hold":
        return { on: form.elements.on.checked, reason: optional("reason") };
      case "defer":
        return { weeks: value("weeks") ? Number(value("weeks")) : undefined, message: optional("message") };
      case "reopen":
      case "check_in":
        return {};
      default:
        return { message: optional("message") };
    }
  }

  async function submitAction(event, detail, action, form) {
    event.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      await api("POST", `/appointments/${encodeURIComponent(detail.id)}/${ACTION_FORMS[action].path}`,
        bodyOf(action, form, detail), { "If-Match": `"${detail.version}"` });
      say(`${ACTION_FORMS[action].label}: done.`, "ok");
      form.dataset.dirty = "false";
      if (state.route.params.has("action")) {
        // Done: the form the link opened stays closed when the appointment is shown again.
        state.route.params.delete("action");
        history.replaceState(null, "", `#/appointment/${encodeURIComponent(detail.id)}`);
      }
      await render(true);
    } catch (error) {
      submit.disabled = false;
      const problem = el("div", { class: "card error", role: "alert", id: "action-error" });
      if (error instanceof ApiError && (error.status === 409 || error.status === 412)) {
        problem.append(el("p", { text: error.status === 412
          ? "Someone changed this appointment while you were typing: nothing was done. Reload it to see what changed."
          : `This cannot be done now: ${error.message}` }),
        el("button", { type: "button", id: "action-reload", onclick: () => { form.dataset.dirty = "false"; render(true); }, text: "Reload the appointment" }));
      } else {
        problem.append(el("p", { text: `Not done: ${error.message}` }));
      }
      form.querySelector("#action-error")?.remove();
      form.prepend(problem);
      problem.querySelector("button")?.focus();
    }
  }

  // -- start --------------------------------------------------------------------------------------------

  async function boot() {
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", () => signOut("Signed out."));
    window.addEventListener("hashchange", route);
    try {
      const response = await fetch("config.json");
      if (response.ok) state.config = { ...state.config, ...(await response.json()) };
    } catch {
      // no config: same-origin API, local sign-in
    }
    if (!state.token && state.config.signIn === "cognito") {
      try {
        if (!(await cognitoSignIn())) return;
      } catch (error) {
        say(`Could not sign in: ${error.message}`, "error");
        return;
      }
    }
    if (state.token) start();
    else showSignIn();
  }

  document.addEventListener("DOMContentLoaded", boot);
})();
