#include "tests/test_util/test_certificates.h"

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace saedict::testing {

bool MakeCertificates(const std::filesystem::path& dir) {
  const std::string d = dir.string();
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script = absl::StrCat(
      "set -e; cd '", d, "'\n",
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > "
      "server.ext\n",
      "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n",
      "for ca in ca rogue; do openssl req -x509 ", key,
      " -keyout $ca.key -out $ca.pem -days 2 "
      "-subj /CN=saedict-test-$ca; done\n",
      "sign() { openssl req ", key,
      " -keyout $1.key -out $1.csr -subj /CN=$1; "
      "openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem "
      "-days 2 -extfile $3; }\n",
      "sign server ca server.ext; sign client ca client.ext; sign rogue_client rogue client.ext\n");
  const std::string command = absl::StrCat("bash -c \"$(cat <<'SAEDICT_EOF'\n", script,
                                           "SAEDICT_EOF\n)\" >'", d, "/openssl.log' 2>&1");
  return std::system(command.c_str()) == 0;
}

}  // namespace saedict::testing
