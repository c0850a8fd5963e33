// tidings dashboard: live updates, with no other script on the page.
//
// - tbody[data-poll]: every POLL_MS, fetch the rows newer than the newest shown (an HTML
//   fragment the server rendered and escaped) and put them on top; update #total.
// - [data-refresh]: while the element has the attribute, fetch the page again and swap in
//   the element's new version (an event whose transactions are still running).
// A poll that finds the session gone (redirected to sign-in) reloads the page.
"use strict";

const POLL_MS = 1500;

async function fetchHtml(url) {
  const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  if (response.redirected) {
    window.location.reload();
    return null;
  }
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response;
}

function every(ms, step) {
  // Runs step, then again ms after it ends, until it returns false or fails.
  const tick = async () => {
    let again = false;
    try {
      again = await step();
    } catch (error) {
      console.warn("tidings: live updates stopped", error);
    }
    if (again) window.setTimeout(tick, ms);
  };
  window.setTimeout(tick, ms);
}

function pollRows(tbody) {
  const total = document.getElementById("total");
  const more = document.getElementById("more");
  every(POLL_MS, async () => {
    const newest = tbody.querySelector("tr[data-key]");
    const url = new URL(tbody.dataset.poll, window.location.href);
    url.searchParams.set("after", newest ? newest.dataset.created : "0");
    url.searchParams.set("afterKey", newest ? newest.dataset.key : "");
    const response = await fetchHtml(url);
    if (!response) return false;
    const fresh = document.createElement("tbody");
    fresh.innerHTML = await response.text();
    const rows = Array.from(fresh.querySelectorAll("tr[data-key]"));
    for (const row of rows.reverse()) {
      if (!tbody.querySelector(`tr[data-key="${CSS.escape(row.dataset.key)}"]`)) {
        row.classList.add("fresh");
        tbody.prepend(row);
      }
    }
    if (rows.length) document.getElementById("empty")?.remove();
    if (total) total.textContent = Number(response.headers.get("X-Total")).toLocaleString("en");
    if (more && response.headers.get("X-More") === "1") more.hidden = false;
    return true;
  });
}

function refresh(element) {
  every(POLL_MS, async () => {
    const response = await fetchHtml(window.location.href);
    if (!response) return false;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const next = page.getElementById(element.id);
    if (!next) return false;
    if (next.innerHTML !== element.innerHTML) element.innerHTML = next.innerHTML;
    return next.hasAttribute("data-refresh");
  });
}

document.querySelectorAll("tbody[data-poll]").forEach(pollRows);
document.querySelectorAll("[data-refresh][id]").forEach(refresh);
