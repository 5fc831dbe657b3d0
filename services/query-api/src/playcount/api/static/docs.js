// The interactive API docs: the vendored Swagger UI over this API's own /openapi.json.
// (A file, not an inline script, so the Content-Security-Policy allows no inline code.)
window.ui = SwaggerUIBundle({ url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true });
