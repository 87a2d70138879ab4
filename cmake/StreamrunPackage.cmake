# What `cmake --install` and `cpack -G DEB` ship: the framework's static libraries and public
# headers as the CMake package `streamrun` (find_package(streamrun) + streamrun::streamrun), and
# the `streamrun` command. Tests, benchmarks, apps and the fuzz targets are not installed.
include(CMakePackageConfigHelpers)

# Everything a pipeline application links: the C++ API, the runtime, JSON serdes, YAML pipelines
# and the built-in operators. streamrun::testing (TopologyTestDriver) is apart, for tests.
add_library(streamrun_streamrun INTERFACE)
add_library(streamrun::streamrun ALIAS streamrun_streamrun)
target_link_libraries(streamrun_streamrun
  INTERFACE streamrun::base streamrun::config streamrun::core streamrun::json streamrun::kafka
            streamrun::state streamrun::dsl streamrun::runtime streamrun::operators)
set_target_properties(streamrun_streamrun PROPERTIES EXPORT_NAME streamrun)
install(TARGETS streamrun_streamrun EXPORT streamrunTargets COMPONENT development)

set(STREAMRUN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/streamrun)
install(EXPORT streamrunTargets NAMESPACE streamrun:: DESTINATION ${STREAMRUN_CMAKE_DIR}
        COMPONENT development)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/streamrunConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/streamrunConfig.cmake
                              INSTALL_DESTINATION ${STREAMRUN_CMAKE_DIR})
# 0.x: a minor version may change the API.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/streamrunConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/streamrunConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/streamrunConfigVersion.cmake
        DESTINATION ${STREAMRUN_CMAKE_DIR} COMPONENT development)

# `cmake --install --strip` and the .deb: the static libraries without their debug information
# too (install() strips only executables and shared libraries), as Debian's -dev packages ship
# them; a RelWithDebInfo build's are ten times larger.
set(_streamrun_strip_archives [[
  if(CMAKE_INSTALL_DO_STRIP)
    file(GLOB _streamrun_archives "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/@CMAKE_INSTALL_LIBDIR@/libstreamrun_*.a")
    foreach(_streamrun_archive IN LISTS _streamrun_archives)
      execute_process(COMMAND "@CMAKE_STRIP@" --strip-debug "${_streamrun_archive}" COMMAND_ERROR_IS_FATAL ANY)
    endforeach()
  endif()
]])
string(CONFIGURE "${_streamrun_strip_archives}" _streamrun_strip_archives @ONLY)
install(CODE "${_streamrun_strip_archives}" COMPONENT development)

# cpack -G DEB (in the build directory): libstreamrun-dev_<version>_<arch>.deb. The libraries
# are static, so the package depends on the -dev packages whose CMake or pkg-config files
# streamrunConfig.cmake looks for; dpkg-shlibdeps adds what the `streamrun` binary loads.
set(CPACK_PACKAGE_NAME libstreamrun-dev)
set(CPACK_PACKAGE_VENDOR streamrun)
set(CPACK_PACKAGE_CONTACT "streamrun developers <streamrun@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "embedded stream processing on Kafka: C++ API, YAML pipelines, RocksDB state")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "cmake (>= 3.25), pkg-config, librdkafka-dev (>= 2.0), librocksdb-dev, libyaml-cpp-dev, libboost-fiber-dev, libboost-context-dev, libspdlog-dev, libfmt-dev, nlohmann-json3-dev (>= 3.10), liblua5.4-dev, libcpp-httplib-dev, libcurl4-openssl-dev")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL development)
set(CPACK_DEB_COMPONENT_INSTALL OFF)
include(CPack)
