// Starts Swagger UI for /docs. Served from /docs/init.js so that the page
// needs no inline script (CSP script-src 'self').
(function () {
  "use strict";

  // Swagger UI defaults the password flow's "Client credentials location"
  // to "Authorization header" and then sends "Basic " + btoa(":") even when
  // no client id or secret was typed. Our token endpoint has no client
  // authentication, so drop that empty header instead of confusing it.
  var EMPTY_BASIC = "Basic " + window.btoa(":");

  function requestInterceptor(req) {
    if (req && req.headers) {
      Object.keys(req.headers).forEach(function (name) {
        if (name.toLowerCase() === "authorization" && req.headers[name] === EMPTY_BASIC) {
          delete req.headers[name];
        }
      });
    }
    return req;
  }

  // With persistAuthorization, Swagger UI writes the whole auth state to
  // localStorage, and for the password flow that state includes the
  // password the user typed. Keep the token, forget the password.
  function ForgetPasswordPlugin() {
    return {
      statePlugins: {
        auth: {
          wrapActions: {
            authorizeOauth2: function (oriAction) {
              return function (payload) {
                if (payload && payload.auth && payload.auth.password !== undefined) {
                  var auth = Object.assign({}, payload.auth);
                  delete auth.password;
                  payload = Object.assign({}, payload, { auth: auth });
                }
                return oriAction(payload);
              };
            }
          }
        }
      }
    };
  }

  var ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis],
    plugins: [ForgetPasswordPlugin],
    layout: "BaseLayout",
    // Keep the token across reloads (localStorage, key "authorized").
    persistAuthorization: true,
    // Default is a badge image from an external validator: no network here.
    validatorUrl: null,
    displayRequestDuration: true,
    filter: true,
    requestInterceptor: requestInterceptor
  });

  // OAuth2 password flow: the user types username and password in the
  // Authorize dialog, Swagger UI POSTs them form-encoded (grant_type=password,
  // username, password, scope) to the scheme's tokenUrl and then sends
  // "Authorization: Bearer <access_token>" on "Try it out" requests.
  // There is no OAuth client, so no client id/secret and no scopes.
  ui.initOAuth({
    appName: "Chat",
    clientId: "",
    clientSecret: "",
    scopes: [],
    scopeSeparator: " ",
    usePkceWithAuthorizationCodeGrant: false
  });

  window.ui = ui;
})();
