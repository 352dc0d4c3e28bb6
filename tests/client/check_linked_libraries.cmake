# Fails when a binary needs a forbidden shared library, or when a target's
# CMake link closure contains a forbidden target. Run with cmake -P:
#   -DBINARY=<file> -DFORBIDDEN_LIBS=<regex>
#       readelf -d NEEDED entries (what the binary itself names) and ldd
#       (everything the loader would map) must not match the regex.
#   -DCLOSURE=<target;...> -DFORBIDDEN_TARGETS=<target;...>
#       none of FORBIDDEN_TARGETS may appear in CLOSURE (computed at configure
#       time by tests/client/CMakeLists.txt); this catches a library linked
#       but dropped by --as-needed because nothing references it yet.
# Each check first proves it saw real output (libc among the libraries, a
# non-empty closure), so a missing tool or binary fails instead of passing.
cmake_minimum_required(VERSION 3.25)

if(DEFINED BINARY)
  if(NOT EXISTS "${BINARY}")
    message(FATAL_ERROR "${BINARY}: no such file (build the target first)")
  endif()
  execute_process(COMMAND readelf -d "${BINARY}" RESULT_VARIABLE rc OUTPUT_VARIABLE dyn
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "readelf -d ${BINARY} failed (${rc}): ${err}")
  endif()
  string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*\\[[^]\n]+\\]" needed_lines "${dyn}")
  set(needed "")
  foreach(line IN LISTS needed_lines)
    string(REGEX REPLACE ".*\\[([^]]+)\\]" "\\1" lib "${line}")
    list(APPEND needed "${lib}")
  endforeach()
  if(NOT needed MATCHES "libc\\.so")
    message(FATAL_ERROR "readelf -d ${BINARY}: no NEEDED libc.so entry; got '${needed}'")
  endif()
  execute_process(COMMAND ldd "${BINARY}" RESULT_VARIABLE rc OUTPUT_VARIABLE mapped
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT mapped MATCHES "libc\\.so")
    message(FATAL_ERROR "ldd ${BINARY} failed (${rc}) or listed no libc.so: ${err}${mapped}")
  endif()
  set(bad "")
  foreach(lib IN LISTS needed)
    if(lib MATCHES "${FORBIDDEN_LIBS}")
      list(APPEND bad "NEEDED ${lib}")
    endif()
  endforeach()
  string(REPLACE "\n" ";" mapped_lines "${mapped}")
  foreach(line IN LISTS mapped_lines)
    string(STRIP "${line}" line)
    if(line MATCHES "${FORBIDDEN_LIBS}")
      list(APPEND bad "ldd: ${line}")
    endif()
  endforeach()
  if(bad)
    list(JOIN bad "\n  " bad_text)
    message(FATAL_ERROR
            "${BINARY} links libraries matching '${FORBIDDEN_LIBS}':\n  ${bad_text}")
  endif()
  list(LENGTH needed n)
  message(STATUS "${BINARY}: ${n} NEEDED entries, none matching '${FORBIDDEN_LIBS}'")
endif()

if(DEFINED CLOSURE)
  if(CLOSURE STREQUAL "")
    message(FATAL_ERROR "empty link closure: the configure-time walk found nothing")
  endif()
  set(bad "")
  foreach(t IN LISTS FORBIDDEN_TARGETS)
    if(t IN_LIST CLOSURE)
      list(APPEND bad "${t}")
    endif()
  endforeach()
  if(bad)
    message(FATAL_ERROR "link closure contains ${bad}; closure: ${CLOSURE}")
  endif()
  list(LENGTH CLOSURE n)
  message(STATUS "link closure of ${n} entries, none of ${FORBIDDEN_TARGETS}")
endif()
