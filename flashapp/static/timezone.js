// Preselect the browser's own time zone on the sign-up form.
(function () {
  "use strict";
  var select = document.getElementById("time_zone");
  if (!select || select.dataset.touched) { return; }
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && select.querySelector('option[value="' + zone + '"]') && select.value === "UTC") {
      select.value = zone;
    }
  } catch (e) { /* keep the server's default */ }
})();
