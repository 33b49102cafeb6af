/* Stub of <MetalPerformanceShaders/MetalPerformanceShaders.h>: only the matrix
 * multiplication that shim/metal/mx_metal.m uses, with Apple's signatures and availability,
 * for `clang -fsyntax-only` off macOS (see README.md). Not for building. */
#ifndef MX_CHECK_MPS_H
#define MX_CHECK_MPS_H

#import <Metal/Metal.h>

/* MPSCoreTypes.h */
typedef NS_OPTIONS(uint32_t, MPSDataType) {
    MPSDataTypeInvalid = 0,
    MPSDataTypeFloatBit = 0x10000000,
    MPSDataTypeFloat32 = MPSDataTypeFloatBit | 32,
    MPSDataTypeFloat16 = MPSDataTypeFloatBit | 16,
};

/* MPSKernel.h */
API_AVAILABLE(macos(10.13))
BOOL MPSSupportsMTLDevice(_Nullable id <MTLDevice> device);

API_AVAILABLE(macos(10.13))
@interface MPSKernel : NSObject <NSCopying>
@property (readonly, retain, nonatomic, nonnull) id <MTLDevice> device;
@property (copy, atomic, nullable) NSString *label;
@end

/* MPSMatrix.h */
API_AVAILABLE(macos(10.13))
@interface MPSMatrixDescriptor : NSObject
@property (readwrite, nonatomic) NSUInteger rows;
@property (readwrite, nonatomic) NSUInteger columns;
@property (readonly, nonatomic) NSUInteger matrices;
@property (readwrite, nonatomic) MPSDataType dataType;
@property (readwrite, nonatomic) NSUInteger rowBytes;
@property (readonly, nonatomic) NSUInteger matrixBytes;
+ (_Nonnull instancetype)matrixDescriptorWithRows:(NSUInteger)rows
                                           columns:(NSUInteger)columns
                                          matrices:(NSUInteger)matrices
                                          rowBytes:(NSUInteger)rowBytes
                                       matrixBytes:(NSUInteger)matrixBytes
                                          dataType:(MPSDataType)dataType API_AVAILABLE(macos(10.13));
@end

API_AVAILABLE(macos(10.13))
@interface MPSMatrix : NSObject
@property (readonly, nonatomic) NSUInteger rows;
@property (readonly, nonatomic) NSUInteger columns;
- (nonnull instancetype)initWithBuffer:(nonnull id <MTLBuffer>)buffer
                                offset:(NSUInteger)offset
                            descriptor:(nonnull MPSMatrixDescriptor *)descriptor API_AVAILABLE(macos(10.15));
@end

/* MPSMatrixMultiplication.h */
API_AVAILABLE(macos(10.13))
@interface MPSMatrixMultiplication : MPSKernel
@property (readwrite, nonatomic) NSUInteger batchStart;
@property (readwrite, nonatomic) NSUInteger batchSize;
- (nonnull instancetype)initWithDevice:(nonnull id <MTLDevice>)device
                         transposeLeft:(BOOL)transposeLeft
                        transposeRight:(BOOL)transposeRight
                            resultRows:(NSUInteger)resultRows
                         resultColumns:(NSUInteger)resultColumns
                       interiorColumns:(NSUInteger)interiorColumns
                                 alpha:(double)alpha
                                  beta:(double)beta;
- (void)encodeToCommandBuffer:(nonnull id <MTLCommandBuffer>)commandBuffer
                   leftMatrix:(MPSMatrix *_Nonnull)leftMatrix
                  rightMatrix:(MPSMatrix *_Nonnull)rightMatrix
                 resultMatrix:(MPSMatrix *_Nonnull)resultMatrix;
@end

#endif
