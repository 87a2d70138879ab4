# One helper per target kind, so that every target gets the same flags and layout.
#
#   streamrun_library(<module> SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
#     framework module: public headers in include/streamrun/<module>/, sources in src/.
#     Target streamrun_<module>, alias streamrun::<module>.
#   streamrun_executable(<name> SOURCES ... [DEPS ...])
#   streamrun_test(<name> SOURCES ... LABELS <unit|integration|crash|soak> [DEPS ...] [TIMEOUT s]
#                  [WHOLE_BINARY])
#     GoogleTest binary; each TEST becomes a CTest test carrying the label (WHOLE_BINARY: the
#     binary is one CTest test, for runs kept out of the default listing).

function(streamrun_library module)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(target streamrun_${module})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(streamrun::${module} ALIAS ${target})
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
                                       PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS}
                                                                    $<BUILD_INTERFACE:streamrun_build_flags>)
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  streamrun_install_library(${target} ${module} ${CMAKE_CURRENT_SOURCE_DIR}/include)
endfunction()

# streamrun_install_library(<target> <export name> <public include dir>)
#   Installs a static library and its public headers into the `streamrun` CMake package
#   (cmake/StreamrunPackage.cmake), where it is streamrun::<export name>.
function(streamrun_install_library target export_name include_dir)
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  target_include_directories(${target} INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  install(TARGETS ${target} EXPORT streamrunTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
  install(DIRECTORY ${include_dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT development)
endfunction()

function(streamrun_executable name)
  cmake_parse_arguments(ARG "" "OUTPUT_NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} streamrun_build_flags)
  if(ARG_OUTPUT_NAME)
    set_target_properties(${name} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endfunction()

function(streamrun_test name)
  cmake_parse_arguments(ARG "WHOLE_BINARY" "TIMEOUT" "SOURCES;LABELS;DEPS" ${ARGN})
  if(NOT ARG_LABELS)
    message(FATAL_ERROR "streamrun_test(${name}) needs LABELS unit|integration|crash|soak")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main
                                        streamrun_build_flags)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  set(test_environment "")
  if(STREAMRUN_SANITIZE STREQUAL "address")
    # ASan's no-return handler calls sigaltstack() on the current stack, which it cannot tell
    # from an overflow when that stack is a fiber's; the option turns that call off.
    set(test_environment "ASAN_OPTIONS=use_sigaltstack=0:detect_leaks=1")
  endif()
  if(ARG_WHOLE_BINARY)
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
                                            ENVIRONMENT "${test_environment}")
    return()
  endif()
  gtest_discover_tests(${name}
    TEST_PREFIX "${name}."
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT} ENVIRONMENT "${test_environment}"
    DISCOVERY_TIMEOUT 60)
endfunction()
