/* Exports of /dashboard/questions with a progress bar. Without JavaScript the form
   is a plain GET and the browser downloads the file itself; with it, the file is
   fetched as a stream and the page shows how far it got: rows for CSV (the server
   sends it line by line), megabytes for Excel (built first, then sent). */
(function () {
  "use strict";
  if (window.__otklikExports) return; // boosted navigation runs page scripts again
  window.__otklikExports = true;

  function number(n) { return n.toLocaleString("ru-RU"); }

  document.addEventListener("submit", async function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains("export-form")) return;
    if (!window.fetch || !window.ReadableStream || !window.URL || !URL.createObjectURL) return;
    var button = event.submitter;
    var action = (button && button.getAttribute("formaction")) || form.getAttribute("action");
    var format = (button && button.dataset.format) || "xlsx";
    event.preventDefault();
    var params = new URLSearchParams(new FormData(form));
    var box = form.querySelector(".export-progress");
    var bar = box.querySelector("progress");
    var text = box.querySelector(".export-progress__text");
    var total = Number(form.dataset.rows) || 0;
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    box.hidden = false;
    bar.removeAttribute("value");
    text.textContent = format === "csv" ? "Выгружаем…" : "Готовим файл Excel…";
    try {
      var response = await fetch(action + "?" + params.toString(), { credentials: "same-origin" });
      if (!response.ok) throw new Error("ошибка " + response.status);
      var reader = response.body.getReader();
      var chunks = [], rows = -1, bytes = 0, last = 0;
      for (;;) {
        var step = await reader.read();
        if (step.done) break;
        var value = step.value;
        chunks.push(value);
        bytes += value.length;
        if (format === "csv") {
          // A row ends with CR LF; a citizen's own line breaks inside a cell are LF only.
          for (var i = 0; i < value.length; i++) {
            if (value[i] === 10 && last === 13) rows++;
            last = value[i];
          }
          bar.max = Math.max(total, 1);
          bar.value = Math.min(Math.max(rows, 0), total);
          text.textContent = "Выгружено строк: " + number(Math.max(rows, 0)) + " из " + number(total);
        } else {
          text.textContent = "Получено " + number(Math.round(bytes / 104857.6) / 10) + " МБ";
        }
      }
      var found = (response.headers.get("content-disposition") || "").match(/filename="([^"]+)"/);
      var link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob(chunks, { type: response.headers.get("content-type") || "" }));
      link.download = found ? found[1] : "voprosy." + format;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
      bar.max = 1;
      bar.value = 1;
      text.textContent = format === "csv"
        ? "Готово: файл сохранён. Выгружено строк: " + number(Math.max(rows, 0)) + "."
        : "Готово: файл сохранён.";
    } catch (error) {
      text.textContent = "Не удалось выгрузить (" + error.message + "). Попробуйте ещё раз.";
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  });
})();
