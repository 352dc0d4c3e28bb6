// The dashboard's static files (dashboard/ in the source tree), embedded in
// the binary at build time (cmake/embed_dashboard.cmake writes the table),
// so a server serves its dashboard with no file or network access.
//
// Thread safety: immutable.
#ifndef SAEDICT_GATEWAY_DASHBOARD_ASSETS_H_
#define SAEDICT_GATEWAY_DASHBOARD_ASSETS_H_

#include <string_view>
#include <vector>

namespace saedict::gateway {

struct DashboardAsset {
  std::string_view path;          // "/index.html", "/app.js"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view bytes;
};

const std::vector<DashboardAsset>& DashboardAssets();

}  // namespace saedict::gateway

#endif  // SAEDICT_GATEWAY_DASHBOARD_ASSETS_H_
