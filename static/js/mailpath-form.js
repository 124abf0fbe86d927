/* Mailpath signup form embed.
 *
 *   <div data-mailpath-form="https://mailpath.example.com/f/<form id>/embed/"></div>
 *   <script src="https://mailpath.example.com/static/js/mailpath-form.js" defer></script>
 *
 * Loads the form into the <div>, sends it without leaving the page and shows the answer
 * (errors next to the fields, or the thank-you message). No cookies are sent. If the
 * script cannot reach Mailpath, the form still posts to the hosted page.
 */
(function () {
  "use strict";

  function show(container, url, html) {
    container.innerHTML = html;
    var redirect = container.querySelector("[data-mailpath-redirect]");
    if (redirect) {
      window.location.assign(redirect.getAttribute("data-mailpath-redirect"));
      return;
    }
    var form = container.querySelector("form.mailpath-form");
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        send(container, url, form);
      });
    }
  }

  function send(container, url, form) {
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    fetch(url, { method: "POST", body: new FormData(form), mode: "cors", credentials: "omit" })
      .then(function (response) { return response.text(); })
      .then(function (html) { show(container, url, html); })
      .catch(function () { form.submit(); });  // offline or blocked: use the hosted page
  }

  function load(container) {
    if (container.getAttribute("data-mailpath-loaded")) return;
    container.setAttribute("data-mailpath-loaded", "1");
    var url = container.getAttribute("data-mailpath-form");
    fetch(url, { mode: "cors", credentials: "omit" })
      .then(function (response) {
        if (!response.ok) throw new Error("Mailpath form " + response.status);
        return response.text();
      })
      .then(function (html) { show(container, url, html); })
      .catch(function (error) { if (window.console) console.warn(error); });
  }

  function loadAll() {
    var containers = document.querySelectorAll("[data-mailpath-form]");
    for (var i = 0; i < containers.length; i++) load(containers[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", loadAll);
  } else {
    loadAll();
  }
})();
