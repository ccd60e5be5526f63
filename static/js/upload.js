/* Upload a model version with a visible progress bar, then open the version page.
   Without JavaScript the form still posts normally; this only adds progress and inline errors. */
(function () {
  "use strict";

  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;

  var submit = document.getElementById("upload-submit");
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var pct = document.getElementById("upload-pct");
  var label = document.getElementById("upload-label");
  var numbers = document.getElementById("upload-numbers");
  var example = document.getElementById("use-example");
  var spec = form.querySelector("[name=input_spec]");

  if (example && spec) {
    example.addEventListener("click", function () {
      spec.value = example.getAttribute("data-example");
      spec.focus();
    });
  }

  function human(bytes) {
    var units = ["bytes", "KiB", "MiB", "GiB"];
    var i = 0;
    while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
    return i === 0 ? bytes + " bytes" : bytes.toFixed(1) + " " + units[i];
  }

  function setProgress(percent, text) {
    var value = Math.max(0, Math.min(100, Math.round(percent)));
    bar.style.width = value + "%";
    pct.textContent = value + "%";
    box.setAttribute("data-progress", String(value));
    if (text !== undefined) label.textContent = text;
  }

  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach(function (list) {
      list.innerHTML = "";
      if (list.getAttribute("data-error-for") === "__all__") list.classList.add("hidden");
    });
    form.querySelectorAll(".field.has-error").forEach(function (field) { field.classList.remove("has-error"); });
  }

  function showError(field, message) {
    var list = field ? form.querySelector('[data-error-for="' + field + '"]') : null;
    if (!list) list = form.querySelector('[data-error-for="__all__"]');
    var item = document.createElement("li");
    item.textContent = message;
    list.appendChild(item);
    list.classList.remove("hidden");
    var wrapper = field ? form.querySelector('.field[data-field="' + field + '"]') : null;
    if (wrapper) wrapper.classList.add("has-error");
    return list;
  }

  function showErrors(body) {
    var first = null;
    if (body.errors) {
      Object.keys(body.errors).forEach(function (field) {
        body.errors[field].forEach(function (message) {
          var list = showError(field === "__all__" ? null : field, message);
          first = first || list;
        });
      });
    } else {
      first = showError(body.error.field, body.error.message);
    }
    if (first && first.scrollIntoView) first.scrollIntoView({ block: "center", behavior: "smooth" });
  }

  function finish() {
    submit.disabled = false;
    submit.textContent = "Upload and inspect";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearErrors();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.setRequestHeader("Accept", "application/json");

    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      setProgress((e.loaded / e.total) * 100);
      numbers.textContent = human(e.loaded) + " of " + human(e.total);
    };
    xhr.upload.onload = function () {
      setProgress(100, "Uploaded. Checking the archive…");
    };
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (ignored) { body = null; }
      if (xhr.status === 201 && body && body.url) {
        label.textContent = "Stored. Opening the version…";
        window.location.assign(body.url);
        return;
      }
      box.classList.add("hidden");
      if (body && body.error) {
        showErrors(body);
      } else if (xhr.responseURL && xhr.responseURL.indexOf("/accounts/login/") !== -1) {
        showError(null, "Your session has ended. Sign in again in another tab, then upload again; nothing was stored.");
      } else if (xhr.status === 403) {
        showError(null, "Your role may not upload versions.");
      } else {
        showError(null, "The server answered " + xhr.status + " " + xhr.statusText + ". Nothing was stored; please try again.");
      }
      finish();
    };
    xhr.onerror = function () {
      box.classList.add("hidden");
      showError(null, "The upload was interrupted before the server answered. Nothing was stored; please try again.");
      finish();
    };

    submit.disabled = true;
    submit.textContent = "Uploading…";
    box.classList.remove("hidden");
    setProgress(0, "Uploading…");
    numbers.textContent = "";
    xhr.send(new FormData(form));
  });
})();
