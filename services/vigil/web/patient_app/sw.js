// The patient app's service worker: shows a pushed alert as a notification (the app may be closed),
// and opens the app's messages when it is tapped. Nothing is cached: readings must never be stale.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("push", (event) => {
  let message = {title: "Vigil", body: ""};
  try { message = event.data ? event.data.json() : message; } catch (e) { message.body = event.data.text(); }
  event.waitUntil(self.registration.showNotification(message.title || "Vigil", {
    body: message.body, tag: message.tag, renotify: true, requireInteraction: !!message.critical,
    icon: "/app/icon.svg", badge: "/app/icon.svg", data: {url: message.url || "/app/"}}));
});
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = (event.notification.data && event.notification.data.url) || "/app/";
  event.waitUntil(self.clients.matchAll({type: "window"}).then((windows) => {
    for (const w of windows) { if (w.url.includes("/app/")) { w.navigate(url); return w.focus(); } }
    return self.clients.openWindow(url);
  }));
});
