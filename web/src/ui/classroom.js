// The online classroom: video tiles, mute controls and the red hang-up control. For the tutor
// the hang-up opens a menu with Leave call and Log time & leave call; students simply leave.

import { MediaLink, openLocalMedia } from "../media.js";
import { h, replace } from "./dom.js";
import { describeError } from "./errors.js";
import { formatClock, initials } from "./format.js";
import { openLogTimeDialog } from "./logtime.js";
import { createThread } from "./messages.js";
import { createNoShowPanel, openRemoveDialog, removableStudents } from "./noshow.js";
import { activeStudents, isTutorOf } from "./session.js";
import { notice, pill } from "./widgets.js";

const ICONS = {
  phone: "M1.5 12.8c5.8-5.4 15.2-5.4 21 0l-2.7 3.3-4.3-1.7v-2.9a11.5 11.5 0 0 0-7 0v2.9l-4.3 1.7z",
  mic: "M12 3a3 3 0 0 1 3 3v6a3 3 0 0 1-6 0V6a3 3 0 0 1 3-3zm-6 9h2a4 4 0 0 0 8 0h2a6 6 0 0 1-5 5.9V21h-2v-3.1A6 6 0 0 1 6 12z",
  camera: "M3 7h12v10H3zM15 10l6-3v10l-6-3z",
};

function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

export async function renderClassroom(app, root, [sessionId], isCurrent) {
  const { conn, me, api } = app;
  const detailsHash = `#/sessions/${encodeURIComponent(sessionId)}`;
  let session = null;
  let media = null;
  let joined = false;
  let leaving = false;
  let completing = false;
  let participants = [];
  let remotes = new Map();
  let mediaState = "new";
  const tileCache = new Map(); // user id → its video tile, kept across redraws
  const joinedAt = Date.now();
  let refreshTimer = null;
  let noShow = null;
  const threads = []; // the chat panel's conversations, one per student for the tutor
  let dropChatTabs = () => {}; // takes removed students' tabs out of the chat panel

  const status = h(
    "p",
    { class: "call-status", role: "status", "aria-live": "polite" },
    "Joining the classroom…",
  );
  const clock = h(
    "span",
    { class: "call-clock", role: "timer", "aria-label": "Time in the call" },
    "00:00",
  );
  const title = h("h1", { class: "call-title" }, "Online classroom");
  const stage = h("section", { class: "stage", "aria-label": "Video" });
  const alerts = h("div", { class: "call-alerts" });
  const noShowSlot = h("div", { class: "call-noshow" });
  const peopleList = h("div", { class: "call-people" });
  const chat = h("div", { class: "chat" });
  const side = h(
    "aside",
    { class: "call-side", "aria-label": "Participants and chat" },
    h(
      "section",
      { class: "side-section", "aria-labelledby": "call-people-heading" },
      h("h2", { id: "call-people-heading", class: "side-heading" }, "Participants"),
      peopleList,
    ),
    h(
      "section",
      { class: "side-section side-chat", "aria-labelledby": "chat-heading" },
      h("h2", { id: "chat-heading", class: "side-heading" }, "Chat"),
      chat,
    ),
  );
  const hangupSlot = h("div", { class: "hangup-slot" });
  const micButton = h(
    "button",
    {
      type: "button",
      class: "control",
      "aria-pressed": "false",
      onclick: () => toggle("audio", micButton),
    },
    icon("mic"),
    h("span", { class: "control-label" }, "Mute"),
  );
  const camButton = h(
    "button",
    {
      type: "button",
      class: "control",
      "aria-pressed": "false",
      onclick: () => toggle("video", camButton),
    },
    icon("camera"),
    h("span", { class: "control-label" }, "Stop video"),
  );
  const controls = h(
    "div",
    { class: "call-controls", role: "toolbar", "aria-label": "Call controls" },
    micButton,
    camButton,
  );

  const localVideo = h("video", {
    autoplay: true,
    playsInline: true,
    muted: true,
    class: "tile-video mirrored",
  });
  const localTile = h(
    "figure",
    { class: "tile tile-local", dataset: { userId: me.userId } },
    localVideo,
    h(
      "div",
      { class: "tile-placeholder", "aria-hidden": "true" },
      h("span", { class: "avatar large" }, initials(me.name)),
    ),
    h(
      "figcaption",
      { class: "tile-caption" },
      h("span", { class: "tile-name" }, `${me.name} (you)`),
      h("span", { class: "tile-badges" }),
    ),
  );
  localTile.classList.add("no-video");

  replace(
    root,
    h(
      "div",
      { class: "classroom" },
      h(
        "header",
        { class: "call-bar" },
        hangupSlot,
        h("div", { class: "call-heading" }, title, status),
        clock,
      ),
      alerts,
      noShowSlot,
      h("div", { class: "call-body" }, stage, side),
      controls,
    ),
  );
  document.body.classList.add("in-call");

  const clockTimer = setInterval(() => {
    clock.textContent = formatClock((Date.now() - joinedAt) / 1000);
  }, 1000);

  function showAlert(kind, message) {
    replace(alerts, notice(kind, message));
  }

  // -- joining ---------------------------------------------------------------------------------
  let ack;
  try {
    ack = await conn.join(sessionId);
  } catch (err) {
    clearInterval(clockTimer);
    document.body.classList.remove("in-call");
    if (!isCurrent()) return null;
    replace(
      root,
      h(
        "section",
        { class: "card narrow" },
        h("h1", {}, "You could not join the classroom"),
        h("p", { role: "alert" }, describeError(err)),
        h(
          "p",
          {},
          h("a", { class: "btn btn-secondary", href: detailsHash }, "Back to the session"),
        ),
      ),
    );
    return null;
  }
  joined = true;
  session = ack.session;
  const tutor = session ? isTutorOf(session, me) : me.role === "tutor";
  title.textContent = session?.topic || "Online classroom";
  participants = conn.presence.get(sessionId)?.participants ?? ack.participants ?? [];
  replace(hangupSlot, tutor ? tutorHangup() : studentHangup());
  drawTiles();
  updateStatus();
  if (session) {
    noShow = createNoShowPanel(app, {
      getSession: () => session,
      refresh: () => refreshSession(),
      inClassroom: true,
      onEnded: async () => {
        joined = false; // the classroom closed for everyone
        app.flash = {
          kind: "info",
          message: "The session was ended as a no-show and the classroom closed.",
        };
        if (!leaving) exit();
      },
    });
    replace(noShowSlot, noShow.el);
    drawPeople();
    openChat();
    refreshSession(); // the view from the join was read before our own stay began
  }

  const unsubscribe = [
    conn.on("presence", (snapshot) => {
      if (snapshot.session_id !== sessionId) return;
      participants = snapshot.participants;
      drawTiles();
      updateStatus();
      drawPeople();
      refreshSoon();
    }),
    conn.on("classroom_closed", (data) => {
      if (data?.session_id !== sessionId || leaving || completing) return;
      joined = false;
      app.flash = {
        kind: "info",
        message:
          data.reason === "hard_cap"
            ? "The classroom closed because the session ran past its scheduled end."
            : data.reason === "no_show"
              ? "The session was ended as a no-show and the classroom closed."
              : "The session was completed and the classroom closed.",
      };
      exit();
    }),
    conn.on("removed", (data) => {
      if (data?.session_id !== sessionId || leaving) return;
      joined = false;
      media?.close();
      media = null;
      app.flash = { kind: "warning", message: "The tutor removed you from this session." };
      exit();
    }),
    conn.on("rejoined", (data) => {
      if (data.session_id !== sessionId) return;
      if (data.error) {
        joined = false;
        showAlert("error", describeError(data.error));
        return;
      }
      showAlert("success", "You are back in the classroom.");
      media?.resume();
    }),
    conn.on("connection", ({ state }) => {
      if (state === "down" && joined)
        showAlert("warning", "Connection lost — reconnecting you to the classroom…");
    }),
  ];

  // -- media -----------------------------------------------------------------------------------
  const local = await openLocalMedia();
  if (!isCurrent() || leaving) {
    for (const track of local.stream?.getTracks() ?? []) track.stop();
  } else {
    if (!local.stream) {
      showAlert(
        "warning",
        "We could not use your camera or microphone. Check the browser's permissions; you can still see and hear the others.",
      );
      micButton.disabled = true;
      camButton.disabled = true;
    } else {
      localVideo.srcObject = local.stream;
      const hasVideo = local.stream.getVideoTracks().length > 0;
      localTile.classList.toggle("no-video", !hasVideo);
      camButton.disabled = !hasVideo;
    }
    media = new MediaLink(conn, { iceServers: ack.ice_servers ?? [], localStream: local.stream });
    media.addEventListener("remotes", (event) => {
      remotes = event.detail;
      drawTiles();
    });
    media.addEventListener("state", (event) => {
      mediaState = event.detail;
      updateStatus();
    });
    media.addEventListener("error", (event) => {
      if (event.detail?.name !== "ServerError")
        console.warn("audio/video negotiation failed:", event.detail);
      showAlert(
        "warning",
        `Audio and video could not be connected. ${describeError(event.detail)}`,
      );
    });
    exposeForTests();
    media.start().catch(() => {});
  }

  // -- the session: no-shows, participants, chat ------------------------------------------------
  async function refreshSession() {
    try {
      const fresh = await api.getSession(sessionId);
      if (leaving) return;
      session = fresh;
      noShow?.update();
      drawPeople();
      dropChatTabs();
    } catch {
      // The call goes on; the next presence change reads it again.
    }
  }

  function refreshSoon() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refreshSession, 300);
  }

  function drawPeople() {
    if (!session) return;
    const here = new Map(participants.map((p) => [p.user_id, p.status]));
    const removable = new Set(removableStudents(session, me).map((s) => s.id));
    const people = [
      session.tutor ? { ...session.tutor, role: "Tutor" } : null,
      ...activeStudents(session).map((s) => ({ ...s, role: "Student" })),
      ...(session.students ?? [])
        .filter((s) => s.acceptance === "removed")
        .map((s) => ({ ...s, role: "Student" })),
    ].filter(Boolean);
    replace(
      peopleList,
      h(
        "ul",
        { class: "call-people-list", role: "list" },
        people.map((person) => {
          const name = person.name || person.id;
          const status = here.get(person.id);
          let state;
          if (person.acceptance === "removed") state = pill("Removed", "danger");
          else if (status === "reconnecting") state = pill("Reconnecting…", "warning");
          else if (status) state = pill("Here", "live");
          else state = pill("Not joined", "neutral");
          let action = null;
          if (removable.has(person.id)) {
            action = h(
              "button",
              {
                type: "button",
                class: "btn btn-ghost btn-small btn-ghost-danger",
                "aria-label": `Remove ${name}`,
                onclick: () => removeStudent(person),
              },
              "Remove",
            );
          }
          return h(
            "li",
            { class: "call-person", dataset: { userId: person.id } },
            h("span", { class: "avatar small", "aria-hidden": "true" }, initials(name)),
            h(
              "span",
              { class: "call-person-name" },
              person.id === me.userId ? `${name} (you)` : name,
              h("span", { class: "muted small" }, ` · ${person.role}`),
            ),
            state,
            action,
          );
        }),
      ),
    );
  }

  async function removeStudent(student) {
    const view = await openRemoveDialog(student, (reason) =>
      conn.removeParticipant(student.id, reason),
    );
    if (!view || leaving) return;
    session = view;
    app.toast("success", `${student.name || student.id} was removed from the session.`);
    noShow?.update();
    drawPeople();
    dropChatTabs();
  }

  async function openChat() {
    const others = tutor ? activeStudents(session) : session.tutor ? [{ ...session.tutor }] : [];
    if (!others.length) return;
    let opened;
    try {
      opened = await Promise.all(others.map((p) => api.openConversation(p.id)));
    } catch (err) {
      replace(chat, h("p", { class: "muted small" }, describeError(err)));
      return;
    }
    if (leaving) return;
    const tabs = [];
    const panels = [];
    others.forEach((person, i) => {
      const name = person.name || person.id;
      const thread = createThread(app, {
        conversationId: opened[i].id,
        conversation: opened[i],
        sessionId,
        compact: true,
        label: `Chat with ${name}`,
        send: (text, clientId) =>
          conn.sendMessage(text, { to: tutor ? person.id : undefined, clientId }),
      });
      threads.push(thread);
      const tabId = `chat-tab-${i}`;
      const panelId = `chat-panel-${i}`;
      tabs.push(
        h(
          "button",
          {
            type: "button",
            role: "tab",
            id: tabId,
            "aria-controls": panelId,
            "aria-selected": String(i === 0),
            tabindex: i === 0 ? "0" : "-1",
            onclick: () => select(i),
          },
          name,
        ),
      );
      panels.push(
        h(
          "div",
          { role: "tabpanel", id: panelId, "aria-labelledby": tabId, hidden: i !== 0 },
          thread.el,
        ),
      );
    });
    function select(index) {
      tabs.forEach((tab, i) => {
        tab.setAttribute("aria-selected", String(i === index));
        tab.tabIndex = i === index ? 0 : -1;
        panels[i].hidden = i !== index;
      });
      threads[index].shown();
    }
    dropChatTabs = () => {
      const still = new Set(activeStudents(session).map((s) => s.id));
      let selectedGone = false;
      others.forEach((person, i) => {
        if (!tutor || still.has(person.id) || tabs[i].hidden) return;
        selectedGone ||= tabs[i].getAttribute("aria-selected") === "true";
        tabs[i].hidden = true;
        panels[i].hidden = true;
      });
      if (selectedGone) {
        const next = tabs.findIndex((tab) => !tab.hidden);
        if (next >= 0) select(next);
      }
    };
    replace(
      chat,
      tabs.length > 1
        ? h(
            "div",
            {
              class: "tabs chat-tabs",
              role: "tablist",
              "aria-label": "Chat with",
              onkeydown: (event) => {
                if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
                event.preventDefault();
                const current = tabs.findIndex((t) => t.getAttribute("aria-selected") === "true");
                let next = current;
                do {
                  next = (next + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length;
                } while (tabs[next].hidden && next !== current);
                select(next);
                tabs[next].focus();
              },
            },
            tabs,
          )
        : h("p", { class: "muted small chat-with" }, `With ${others[0].name || others[0].id}`),
      panels,
    );
    dropChatTabs();
  }

  // -- drawing ---------------------------------------------------------------------------------
  function drawTiles() {
    const others = participants.filter((p) => p.user_id !== me.userId);
    const seen = new Set();
    const tiles = [localTile];
    for (const p of others) {
      seen.add(p.user_id);
      tiles.push(remoteTile(p.user_id, p.name, p));
    }
    // Media can arrive a moment before presence says who it is.
    for (const [userId, remote] of remotes) {
      if (!seen.has(userId)) tiles.push(remoteTile(userId, remote.name, null));
    }
    stage.dataset.count = String(tiles.length);
    for (const old of [...stage.children]) if (!tiles.includes(old)) old.remove();
    tiles.forEach((tile, i) => {
      if (stage.children[i] !== tile) stage.insertBefore(tile, stage.children[i] ?? null);
    });
    if (others.length === 0) {
      stage.append(
        h(
          "div",
          { class: "tile tile-waiting" },
          h(
            "p",
            {},
            tutor ? "Waiting for your student to join…" : "Waiting for your tutor to join…",
          ),
        ),
      );
    }
  }

  function remoteTile(userId, name, presence) {
    let entry = tileCache.get(userId);
    if (!entry) {
      const video = h("video", { autoplay: true, playsInline: true, class: "tile-video" });
      const badges = h("span", { class: "tile-badges" });
      const nameEl = h("span", { class: "tile-name" });
      const avatar = h("span", { class: "avatar large" });
      const el = h(
        "figure",
        { class: "tile tile-remote no-video", dataset: { userId } },
        video,
        h("div", { class: "tile-placeholder", "aria-hidden": "true" }, avatar),
        h("figcaption", { class: "tile-caption" }, nameEl, badges),
      );
      video.addEventListener("playing", () => el.classList.remove("no-video"));
      entry = { el, video, badges, nameEl, avatar, stream: null };
      tileCache.set(userId, entry);
    }
    entry.nameEl.textContent = name || userId;
    entry.avatar.textContent = initials(name);
    const remote = remotes.get(userId);
    if (remote && entry.stream !== remote.stream) {
      entry.stream = remote.stream;
      entry.video.srcObject = remote.stream;
      entry.video.play().catch(() => {});
    } else if (!remote && entry.stream) {
      entry.stream = null;
      entry.video.srcObject = null;
      entry.el.classList.add("no-video");
    }
    const badges = [];
    if (presence?.status === "reconnecting")
      badges.push(h("span", { class: "badge badge-reconnecting" }, "Reconnecting…"));
    if (presence?.media === "failed" || presence?.media === "stalled")
      badges.push(h("span", { class: "badge badge-warning" }, "Video interrupted"));
    if (!presence) badges.push(h("span", { class: "badge badge-neutral" }, "Left"));
    replace(entry.badges, badges);
    entry.el.dataset.status = presence?.status ?? "gone";
    entry.el.setAttribute(
      "aria-label",
      `${name || userId}${presence?.status === "reconnecting" ? ", reconnecting" : ""}`,
    );
    return entry.el;
  }

  function updateStatus() {
    const others = participants.filter((p) => p.user_id !== me.userId);
    let text;
    if (!others.length) text = "You are the only one here.";
    else {
      const names = others.map((p) =>
        p.status === "reconnecting" ? `${p.name} (reconnecting)` : p.name,
      );
      text = `In the call with ${names.join(", ")}.`;
    }
    if (mediaState === "connecting" || mediaState === "new") text += " Connecting audio and video…";
    if (mediaState === "failed") text += " The video connection failed; retrying…";
    status.textContent = text;
  }

  function toggle(kind, button) {
    const off = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(off));
    media?.setEnabled(kind, !off);
    const label = button.querySelector(".control-label");
    if (kind === "audio") label.textContent = off ? "Unmute" : "Mute";
    else {
      label.textContent = off ? "Start video" : "Stop video";
      localTile.classList.toggle("video-off", off);
    }
    const badges = localTile.querySelector(".tile-badges");
    const micOff = micButton.getAttribute("aria-pressed") === "true";
    const camOff = camButton.getAttribute("aria-pressed") === "true";
    replace(
      badges,
      micOff ? h("span", { class: "badge badge-neutral" }, "Muted") : null,
      camOff ? h("span", { class: "badge badge-neutral" }, "Camera off") : null,
    );
  }

  // -- the red hang-up control -----------------------------------------------------------------
  function studentHangup() {
    return h(
      "button",
      { type: "button", class: "hangup", onclick: leaveCall },
      icon("phone"),
      h("span", {}, "Leave call"),
    );
  }

  function tutorHangup() {
    const button = h(
      "button",
      {
        type: "button",
        class: "hangup",
        id: "hangup-button",
        "aria-haspopup": "menu",
        "aria-expanded": "false",
        "aria-controls": "hangup-menu",
      },
      icon("phone"),
      h("span", {}, "Leave"),
    );
    const items = [
      h(
        "button",
        {
          type: "button",
          role: "menuitem",
          tabindex: "-1",
          class: "menu-item",
          onclick: () => {
            closeMenu();
            leaveCall();
          },
        },
        h("strong", {}, "Leave call"),
        h("span", { class: "muted small" }, "Complete the session later from its details page"),
      ),
      h(
        "button",
        {
          type: "button",
          role: "menuitem",
          tabindex: "-1",
          class: "menu-item",
          onclick: () => {
            closeMenu({ focus: true }); // the pop-up gives focus back to the hang-up button
            logTimeAndLeave();
          },
        },
        h("strong", {}, "Log time & leave call"),
        h("span", { class: "muted small" }, "Log the time and recap now; completes the session"),
      ),
    ];
    const menu = h(
      "div",
      {
        class: "menu",
        role: "menu",
        id: "hangup-menu",
        "aria-labelledby": "hangup-button",
        hidden: true,
      },
      items,
    );
    const wrapper = h("div", { class: "menu-wrapper" }, button, menu);

    function openMenu() {
      menu.hidden = false;
      button.setAttribute("aria-expanded", "true");
      items[0].focus();
      document.addEventListener("pointerdown", outside, true);
    }
    function closeMenu({ focus = false } = {}) {
      menu.hidden = true;
      button.setAttribute("aria-expanded", "false");
      document.removeEventListener("pointerdown", outside, true);
      if (focus) button.focus();
    }
    function outside(event) {
      if (!wrapper.contains(event.target)) closeMenu();
    }
    button.addEventListener("click", () => (menu.hidden ? openMenu() : closeMenu()));
    button.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        openMenu();
      }
    });
    menu.addEventListener("keydown", (event) => {
      const i = items.indexOf(document.activeElement);
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const next = (i + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
        items[next].focus();
      } else if (event.key === "Escape") {
        event.preventDefault();
        closeMenu({ focus: true });
      } else if (event.key === "Tab") {
        closeMenu();
      }
    });
    return wrapper;
  }

  async function leaveCall() {
    if (leaving) return;
    leaving = true;
    status.textContent = "Leaving the call…";
    try {
      const result = await conn.leaveCall();
      joined = false;
      if (tutor) {
        app.flash = result.can_complete
          ? { kind: "success", message: "You left the call. You can now complete the session." }
          : {
              kind: "info",
              message:
                "You left the call. Complete Session becomes available once everyone else has left.",
            };
      }
    } catch (err) {
      joined = false;
      app.flash = { kind: "warning", message: describeError(err) };
    }
    exit();
  }

  async function logTimeAndLeave() {
    let suggested = null;
    let overlapNote = null;
    try {
      const fresh = await api.getSession(sessionId);
      suggested = fresh.attendance?.suggested_minutes ?? null;
      if (suggested)
        overlapNote =
          "Pre-selected from the time you and your student have been in the classroom together.";
    } catch {
      // The pop-up still works without a suggestion.
    }
    const result = await openLogTimeDialog({
      title: "Log time & leave call",
      submitLabel: "Log time & leave call",
      suggestedMinutes: suggested,
      overlapNote,
      submit: async (minutes, recap) => {
        completing = true;
        try {
          return await conn.logTimeAndLeave(minutes, recap);
        } catch (err) {
          completing = false;
          throw err;
        }
      },
    });
    if (!result || leaving) return;
    leaving = true;
    joined = false;
    app.flash = {
      kind: "success",
      message: "Time logged and session completed. The invoice has been sent.",
    };
    exit();
  }

  function exit() {
    leaving = true;
    app.navigate(detailsHash);
  }

  function exposeForTests() {
    // For automated checks and support: what this page receives, from getStats().
    window.classroomMedia = {
      videoStats: () => (media ? media.videoStats() : Promise.resolve([])),
      connectionState: () => media?.pc?.connectionState ?? "closed",
    };
  }

  return async () => {
    clearInterval(clockTimer);
    clearTimeout(refreshTimer);
    noShow?.destroy();
    for (const thread of threads) thread.destroy();
    document.body.classList.remove("in-call");
    for (const off of unsubscribe) off();
    for (const dialog of document.querySelectorAll("dialog.dialog-logtime")) dialog.close();
    if (joined) {
      joined = false;
      try {
        await conn.leaveCall();
      } catch {
        // Leaving anyway: a disconnect also counts as leaving after the grace period.
      }
    }
    media?.close();
    media = null;
    delete window.classroomMedia;
  };
}
