# saedict_add_test(NAME SOURCES a.cc b.cc DEPS lib... [LABELS l...])
# One gtest executable per test file; tests are discovered individually.
# Every test runs from the build tree with SAEDICT_SHARED_DATA pointing at
# ../shared/data when it exists (tests skip visibly when it does not).
set(SAEDICT_SHARED_DATA "${CMAKE_SOURCE_DIR}/../shared/data" CACHE PATH
    "Real test data (stories260k); tests skip when absent")
function(saedict_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} saedict_test_util
                        GTest::gmock GTest::gtest_main)
  set(props ENVIRONMENT "SAEDICT_SHARED_DATA=${SAEDICT_SHARED_DATA}")
  if(T_LABELS)
    list(APPEND props LABELS "${T_LABELS}")
  endif()
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()
