/* Stub of <Metal/Metal.h>: only the protocols, classes, enums and methods that
 * shim/metal/mx_metal.m uses, with Apple's signatures and availability, for
 * `clang -fsyntax-only` off macOS (see README.md). Not for building. */
#ifndef MX_CHECK_METAL_H
#define MX_CHECK_METAL_H

#import <Foundation/Foundation.h>

#define MTL_EXTERN extern

NS_ASSUME_NONNULL_BEGIN

/* MTLTypes.h */
typedef struct {
    NSUInteger width, height, depth;
} MTLSize;

static inline MTLSize MTLSizeMake(NSUInteger width, NSUInteger height, NSUInteger depth) {
    MTLSize size = {width, height, depth};
    return size;
}

/* MTLResource.h */
typedef NS_ENUM(NSUInteger, MTLCPUCacheMode) {
    MTLCPUCacheModeDefaultCache = 0,
    MTLCPUCacheModeWriteCombined = 1,
} API_AVAILABLE(macos(10.11));

typedef NS_ENUM(NSUInteger, MTLStorageMode) {
    MTLStorageModeShared = 0,
    MTLStorageModeManaged = 1,
    MTLStorageModePrivate = 2,
    MTLStorageModeMemoryless = 3,
} API_AVAILABLE(macos(10.11));

#define MTLResourceCPUCacheModeShift 0
#define MTLResourceStorageModeShift 4
#define MTLResourceHazardTrackingModeShift 8

typedef NS_OPTIONS(NSUInteger, MTLResourceOptions) {
    MTLResourceCPUCacheModeDefaultCache = MTLCPUCacheModeDefaultCache << MTLResourceCPUCacheModeShift,
    MTLResourceStorageModeShared API_AVAILABLE(macos(10.11)) = MTLStorageModeShared << MTLResourceStorageModeShift,
    MTLResourceStorageModePrivate API_AVAILABLE(macos(10.11)) = MTLStorageModePrivate << MTLResourceStorageModeShift,
} API_AVAILABLE(macos(10.11));

@protocol MTLDevice;
@protocol MTLCommandBuffer;

@protocol MTLResource <NSObject>
@property (nullable, copy, atomic) NSString *label;
@property (readonly) id <MTLDevice> device;
@end

/* MTLBuffer.h */
@protocol MTLBuffer <MTLResource>
@property (readonly) NSUInteger length;
- (void *)contents NS_RETURNS_INNER_POINTER;
@end

/* MTLLibrary.h */
typedef NS_ENUM(NSUInteger, MTLLanguageVersion) {
    MTLLanguageVersion2_3 API_AVAILABLE(macos(11.0)) = (2 << 16) + 3,
    MTLLanguageVersion2_4 API_AVAILABLE(macos(12.0)) = (2 << 16) + 4,
    MTLLanguageVersion3_0 API_AVAILABLE(macos(13.0)) = (3 << 16) + 0,
    MTLLanguageVersion3_1 API_AVAILABLE(macos(14.0)) = (3 << 16) + 1,
    MTLLanguageVersion3_2 API_AVAILABLE(macos(15.0)) = (3 << 16) + 2,
} API_AVAILABLE(macos(10.11));

typedef NS_ENUM(NSInteger, MTLMathMode) {
    MTLMathModeSafe = 0,
    MTLMathModeRelaxed = 1,
    MTLMathModeFast = 2,
} API_AVAILABLE(macos(15.0));

typedef NS_ENUM(NSInteger, MTLMathFloatingPointFunctions) {
    MTLMathFloatingPointFunctionsFast = 0,
    MTLMathFloatingPointFunctionsPrecise = 1,
} API_AVAILABLE(macos(15.0));

@protocol MTLFunction <NSObject>
@property (readonly) NSString *name;
@end

API_AVAILABLE(macos(10.11))
@interface MTLCompileOptions : NSObject <NSCopying>
@property (nullable, readwrite, copy, nonatomic) NSDictionary <NSString *, NSObject *> *preprocessorMacros;
@property (readwrite, nonatomic) BOOL fastMathEnabled API_DEPRECATED("Use mathMode instead", macos(10.11, 15.0));
@property (readwrite, nonatomic) MTLMathMode mathMode API_AVAILABLE(macos(15.0));
@property (nonatomic) MTLMathFloatingPointFunctions mathFloatingPointFunctions API_AVAILABLE(macos(15.0));
@property (readwrite, nonatomic) MTLLanguageVersion languageVersion API_AVAILABLE(macos(10.11));
@end

@protocol MTLLibrary <NSObject>
- (nullable id <MTLFunction>)newFunctionWithName:(NSString *)functionName;
@property (readonly) NSArray <NSString *> *functionNames;
@end

/* MTLComputePipeline.h */
@protocol MTLComputePipelineState <NSObject>
@property (readonly) NSUInteger maxTotalThreadsPerThreadgroup;
@property (readonly) NSUInteger threadExecutionWidth;
@property (readonly) NSUInteger staticThreadgroupMemoryLength API_AVAILABLE(macos(10.13));
@end

/* MTLEvent.h */
API_AVAILABLE(macos(10.14))
@protocol MTLEvent <NSObject>
@property (nullable, readonly) id <MTLDevice> device;
@end

API_AVAILABLE(macos(10.14))
@protocol MTLSharedEvent <MTLEvent>
@property (readwrite) uint64_t signaledValue;
@end

/* MTLCommandEncoder.h, MTLComputeCommandEncoder.h */
@protocol MTLCommandEncoder <NSObject>
- (void)endEncoding;
@end

@protocol MTLComputeCommandEncoder <MTLCommandEncoder>
- (void)setComputePipelineState:(id <MTLComputePipelineState>)state;
- (void)setBytes:(const void *)bytes length:(NSUInteger)length atIndex:(NSUInteger)index API_AVAILABLE(macos(10.11));
- (void)setBuffer:(nullable id <MTLBuffer>)buffer offset:(NSUInteger)offset atIndex:(NSUInteger)index;
- (void)setThreadgroupMemoryLength:(NSUInteger)length atIndex:(NSUInteger)index;
- (void)dispatchThreadgroups:(MTLSize)threadgroupsPerGrid threadsPerThreadgroup:(MTLSize)threadsPerThreadgroup;
@end

/* MTLCommandBuffer.h */
typedef NS_ENUM(NSUInteger, MTLCommandBufferStatus) {
    MTLCommandBufferStatusNotEnqueued = 0,
    MTLCommandBufferStatusEnqueued = 1,
    MTLCommandBufferStatusCommitted = 2,
    MTLCommandBufferStatusScheduled = 3,
    MTLCommandBufferStatusCompleted = 4,
    MTLCommandBufferStatusError = 5,
} API_AVAILABLE(macos(10.11));

typedef void (^MTLCommandBufferHandler)(id <MTLCommandBuffer>);

@protocol MTLCommandBuffer <NSObject>
@property (readonly) CFTimeInterval GPUStartTime API_AVAILABLE(macos(10.15));
@property (readonly) CFTimeInterval GPUEndTime API_AVAILABLE(macos(10.15));
- (void)commit;
- (void)addCompletedHandler:(MTLCommandBufferHandler)block;
- (void)waitUntilCompleted;
@property (readonly) MTLCommandBufferStatus status;
@property (nullable, readonly) NSError *error;
- (nullable id <MTLComputeCommandEncoder>)computeCommandEncoder;
- (void)encodeWaitForEvent:(id <MTLEvent>)event value:(uint64_t)value API_AVAILABLE(macos(10.14));
- (void)encodeSignalEvent:(id <MTLEvent>)event value:(uint64_t)value API_AVAILABLE(macos(10.14));
@end

/* MTLCommandQueue.h */
@protocol MTLCommandQueue <NSObject>
@property (nullable, copy, atomic) NSString *label;
- (nullable id <MTLCommandBuffer>)commandBuffer;
@end

/* MTLDevice.h */
typedef NS_ENUM(NSInteger, MTLGPUFamily) {
    MTLGPUFamilyApple1 = 1001,
    MTLGPUFamilyApple2 = 1002,
    MTLGPUFamilyApple3 = 1003,
    MTLGPUFamilyApple4 = 1004,
    MTLGPUFamilyApple5 = 1005,
    MTLGPUFamilyApple6 = 1006,
    MTLGPUFamilyApple7 API_AVAILABLE(macos(11.0)) = 1007,
    MTLGPUFamilyApple8 API_AVAILABLE(macos(13.0)) = 1008,
    MTLGPUFamilyApple9 API_AVAILABLE(macos(14.0)) = 1009,
    MTLGPUFamilyMac2 = 2002,
    MTLGPUFamilyMetal3 API_AVAILABLE(macos(13.0)) = 5001,
} API_AVAILABLE(macos(10.15));

API_AVAILABLE(macos(14.0))
@interface MTLArchitecture : NSObject <NSCopying>
@property (nonnull, readonly) NSString *name;
@end

@protocol MTLDevice <NSObject>
@property (nonnull, readonly) NSString *name;
@property (nonnull, readonly) MTLArchitecture *architecture API_AVAILABLE(macos(14.0));
@property (readonly) MTLSize maxThreadsPerThreadgroup API_AVAILABLE(macos(10.11));
@property (readonly) uint64_t recommendedMaxWorkingSetSize API_AVAILABLE(macos(10.12));
@property (readonly) BOOL hasUnifiedMemory API_AVAILABLE(macos(10.15));
@property (readonly) NSUInteger currentAllocatedSize API_AVAILABLE(macos(10.13));
@property (readonly) NSUInteger maxThreadgroupMemoryLength API_AVAILABLE(macos(10.13));
@property (readonly) NSUInteger maxBufferLength API_AVAILABLE(macos(10.14));
- (BOOL)supportsFamily:(MTLGPUFamily)gpuFamily API_AVAILABLE(macos(10.15));
- (nullable id <MTLCommandQueue>)newCommandQueue;
- (nullable id <MTLBuffer>)newBufferWithLength:(NSUInteger)length options:(MTLResourceOptions)options;
- (nullable id <MTLBuffer>)newBufferWithBytes:(const void *)pointer length:(NSUInteger)length options:(MTLResourceOptions)options;
- (nullable id <MTLLibrary>)newLibraryWithSource:(NSString *)source options:(nullable MTLCompileOptions *)options error:(__autoreleasing NSError **)error;
- (nullable id <MTLComputePipelineState>)newComputePipelineStateWithFunction:(id <MTLFunction>)computeFunction error:(__autoreleasing NSError **)error;
- (nullable id <MTLSharedEvent>)newSharedEvent API_AVAILABLE(macos(10.14));
@end

MTL_EXTERN id <MTLDevice> _Nullable MTLCreateSystemDefaultDevice(void) API_AVAILABLE(macos(10.11)) NS_RETURNS_RETAINED;

NS_ASSUME_NONNULL_END

#endif
