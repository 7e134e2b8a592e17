// The question page: a live length counter for the reply against the platform's limit.
// Everything else works without JavaScript. Bound once on the document, so htmx swaps of
// the page's fragments need no re-binding.
(function () {
  if (window.otklikQuestion) return;
  window.otklikQuestion = true;

  function plural(n, one, few, many) {
    var m10 = n % 10, m100 = n % 100;
    if (m10 === 1 && m100 !== 11) return one;
    if (m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14)) return few;
    return many;
  }

  function update(textarea) {
    var counter = document.querySelector('[data-counter-for="' + textarea.name + '"]');
    if (!counter) return;
    var limit = parseInt(counter.getAttribute('data-limit'), 10) || 0;
    var splits = counter.getAttribute('data-splits') === '1';
    var n = textarea.value.length;
    var text = n + ' из ' + limit + ' ' + plural(limit, 'знака', 'знаков', 'знаков');
    var over = n > limit;
    if (over && splits) {
      var parts = Math.ceil(n / limit);
      text += ' — уйдёт ' + parts + ' ' + plural(parts, 'сообщением', 'сообщениями', 'сообщениями');
      over = false;
    } else if (over) {
      text += ' — сократите на ' + (n - limit);
    }
    counter.textContent = text;
    counter.classList.toggle('reply__counter--over', over);
  }

  document.addEventListener('input', function (event) {
    if (event.target && event.target.id === 'text') update(event.target);
  });
  function init() {
    var textarea = document.getElementById('text');
    if (textarea) update(textarea);
  }
  document.addEventListener('htmx:afterSettle', init);
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
