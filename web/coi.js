// Runs first: where the server sent no COOP/COEP headers, registers sw.js (which adds them) and
// reloads once it controls the page, so WebAssembly can run on several threads. `?sw=0` turns it
// off (the page then runs on one thread and says so). `window.e2sIsolation` settles when the page
// may start loading the model (it never does when a reload is coming).
(function () {
  'use strict';
  const tried = 'e2s-coi-reloaded';
  const params = new URLSearchParams(location.search);
  if (self.crossOriginIsolated) sessionStorage.removeItem(tried);
  if (self.crossOriginIsolated || params.get('sw') === '0' || !window.isSecureContext ||
      !('serviceWorker' in navigator) || sessionStorage.getItem(tried)) {
    window.e2sIsolation = Promise.resolve();
    return;
  }
  window.e2sIsolation = new Promise((resolve) => {
    const reload = () => {
      sessionStorage.setItem(tried, '1'); // once: if the reload is not isolated either, stay on one thread
      location.reload();
    };
    navigator.serviceWorker.register('sw.js').then(() => {
      if (navigator.serviceWorker.controller) reload();
      else navigator.serviceWorker.addEventListener('controllerchange', reload);
      setTimeout(resolve, 5000); // the worker never took control: go on with one thread
    }).catch(resolve);
  });
})();
