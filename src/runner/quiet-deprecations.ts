// Bundled dependencies (punycode, url.parse in the Kubernetes client's HTTP stack) make
// Node print deprecation warnings that a workflow user can do nothing about. Imported
// first, so it is in effect before those modules load.
process.noDeprecation = true
