/* Stub of <os/availability.h> for checking shim/metal/mx_metal.m off macOS (see README.md).
 * Only the macos(...) platform is understood: the stubs name no other. */
#ifndef MX_CHECK_OS_AVAILABILITY_H
#define MX_CHECK_OS_AVAILABILITY_H

#define __MX_AVAIL_macos(v) __attribute__((availability(macos, introduced = v)))
#define __MX_DEPR_macos(a, b) macos, introduced = a, deprecated = b
#define API_AVAILABLE(platform) __MX_AVAIL_##platform
#define API_DEPRECATED(msg, platform) __attribute__((availability(__MX_DEPR_##platform, message = msg)))

#endif
