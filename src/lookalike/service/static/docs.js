// /docs: Swagger UI over the service's own OpenAPI document. Its files come from the Python package
// that ships them (served at /docs-assets/), so the page works with no network beyond the service.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
  // the OpenAPI document is the service's own: no "validator" badge that asks a public server
  validatorUrl: null,
});
