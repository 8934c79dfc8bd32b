# 'cpack -G DEB' in the build directory: zrelay_VERSION_amd64.deb with the four tools, their man pages
# (docs/man), the systemd unit and an example /etc/zrelay/zrelay.toml (a conffile) - the install
# component "tools". The library, its headers and CMake package (the default component, which another
# project installs and finds: tests/install) are not in it. tests/package builds, lints and installs it.

# /etc and not /usr/etc for the package's prefix /usr, PREFIX/etc for any other: decided at install
# time (cpack installs with the prefix /usr into a DESTDIR), as GNUInstallDirs decides FULL_SYSCONFDIR.
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(zrelay_sysconfdir /etc)
  else()
    set(zrelay_sysconfdir \"\${CMAKE_INSTALL_PREFIX}/etc\")
  endif()
  file(INSTALL \"${PROJECT_SOURCE_DIR}/packaging/zrelay.toml\" DESTINATION \"\${zrelay_sysconfdir}/zrelay\")
  " COMPONENT tools)
install(FILES packaging/zrelay.service DESTINATION lib/systemd/system COMPONENT tools)

# Debian's doc files: the copyright and the changelog (gzipped without name or time, -n -9), whose
# newest entry must be this version.
file(STRINGS packaging/changelog changelog_head LIMIT_COUNT 1)
if(NOT changelog_head MATCHES "^zrelay \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "packaging/changelog starts with '${changelog_head}': add an entry for ${PROJECT_VERSION} on top")
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS packaging/changelog)
file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/packaging)
execute_process(COMMAND gzip -n -9 -c INPUT_FILE ${PROJECT_SOURCE_DIR}/packaging/changelog
                OUTPUT_FILE ${PROJECT_BINARY_DIR}/packaging/changelog.gz RESULT_VARIABLE gzip_status)
if(NOT gzip_status EQUAL 0)
  message(FATAL_ERROR "cannot gzip packaging/changelog: ${gzip_status}")
endif()
install(FILES packaging/copyright ${PROJECT_BINARY_DIR}/packaging/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/zrelay COMPONENT tools)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME zrelay)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "zrelay maintainers <maintainers@users.noreply.b-seed-047002f1.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "ZeroMQ pub/sub relay with acknowledged publishing")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "\
zrelay forwards ZeroMQ publish/subscribe messages from publishers to
subscribers; zpub's messages are acknowledged once the relay has taken them
(and, with a journal, once they are on disk), and a journal lets subscribers
replay what they missed. zpub publishes, zsub subscribes, zbench measures.
The package holds the four tools, their manual pages, a systemd unit and an
example configuration in /etc/zrelay/zrelay.toml.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # zrelay_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends from the binaries' libraries (dpkg-shlibdeps)
set(CPACK_DEBIAN_PACKAGE_DEPENDS procps)  # and /bin/kill, the unit's ExecReload
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/packaging/conffiles ${PROJECT_SOURCE_DIR}/packaging/postinst
    ${PROJECT_SOURCE_DIR}/packaging/prerm ${PROJECT_SOURCE_DIR}/packaging/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
# Only the tools' component, installed with the prefix /usr into a DESTDIR (so that /etc stays /etc).
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};zrelay;tools;/")
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
