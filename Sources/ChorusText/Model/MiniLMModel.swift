import ChorusCore

/// all-MiniLM-L6-v2 (any BERT encoder with its layout) run from its original weights: the BERT
/// encoder of Hugging Face `transformers` followed by sentence-transformers' mean pooling and
/// L2 normalisation, in float32, following PyTorch's order of operations, except that the dense
/// layers' weight matrices are held in half precision (`Dense`: cosine to the f32 model ≥ 0.9999997
/// on the reference and movie-title sentences).
///
/// `model.safetensors` (about 87 MB) is read tensor by tensor, not mapped (a file truncated under a
/// mapping would kill the host with SIGBUS): the dense weights are packed in half precision (21 MB
/// for all-MiniLM-L6-v2, shared by every call and thread) and the embeddings and LayerNorm
/// parameters kept in f32 (48 MB). Every weight is checked finite at load. Scratch buffers are
/// allocated once per `embed` call and reused across batches and layers.
///
/// Thread safety: immutable after `init`; `embed` may be called from several threads at once.
public final class MiniLMModel: @unchecked Sendable {
    /// The most sequences run through the encoder together (their tokens stacked, without padding).
    public static let maxBatch = 32
    /// The most tokens in one batch (a longer sequence still runs, alone): bounds the scratch
    /// memory, about 14 KB per token.
    public static let maxBatchTokens = 4096

    public let config: BertConfig
    /// The model directory given to `init`.
    public let directory: String
    /// sentence-transformers' `max_seq_length` (`sentence_bert_config.json`; 256 for
    /// all-MiniLM-L6-v2): the tokenizer should truncate to this many tokens, [CLS] and [SEP]
    /// included. The model itself accepts up to `config.maxPositionEmbeddings`.
    public let maxSequenceLength: Int
    /// The length of an embedding (384).
    public var dimension: Int { config.hiddenSize }

    let weights: BertWeights

    /// Loads `config.json` and `model.safetensors` from `directory` (and, when present,
    /// `sentence_bert_config.json` and `1_Pooling/config.json`, which must ask for mean pooling).
    /// - Throws: `.notFound` for a missing file, `.format` for a malformed one (naming the file and
    ///   the field or tensor), `.unsupportedVersion` for an architecture this code does not run.
    public init(directory: String) throws(ChorusError) {
        let dir = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        self.directory = directory
        let config = try BertConfig(path: dir + "/config.json")
        self.config = config
        self.weights = try BertWeights(file: try SafeTensors(path: dir + "/model.safetensors"), config: config)

        var maxLength = config.maxPositionEmbeddings
        let stPath = dir + "/sentence_bert_config.json"
        if FileIO.exists(stPath) {
            let json = try JSONValue.parse(try FileIO.readAll(path: stPath), source: stPath)
            if let v = json["max_seq_length"], !v.isNull {
                guard let n = v.intValue, n >= 1 else { throw .format("\(stPath): \"max_seq_length\" is \(v), not a positive integer") }
                maxLength = min(n, maxLength)
            }
        }
        self.maxSequenceLength = maxLength

        let poolPath = dir + "/1_Pooling/config.json"
        if FileIO.exists(poolPath) {
            let json = try JSONValue.parse(try FileIO.readAll(path: poolPath), source: poolPath)
            for key in ["pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                        "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"] where json[key]?.boolValue == true {
                throw .unsupportedVersion("\(poolPath): \(key) is set; only mean pooling is supported")
            }
            guard json["pooling_mode_mean_tokens"]?.boolValue == true else {
                throw .unsupportedVersion("\(poolPath): pooling_mode_mean_tokens is not true; only mean pooling is supported")
            }
        }
    }

    /// Embeds token-id sequences (each as the tokenizer gives it: [CLS] ... [SEP], no padding).
    ///
    /// Sequences are sorted by length and run in batches of up to `maxBatch`. A batch is packed:
    /// its sequences' tokens are stacked without padding for the dense layers, and each sequence
    /// attends only to its own tokens. That is the computation of a padded batch with an
    /// attention mask minus the padding rows (BERT's mask gives padding keys a weight of exactly 0),
    /// so a sequence's embedding does not depend on what it is batched with, nor on `threads`: the
    /// matrix products sum each output in one fixed order (`Dense`), so the results are bit-identical.
    /// - Parameters:
    ///   - tokenIds: one array of ids per sequence, each id in `0..<config.vocabSize`, at most
    ///     `config.maxPositionEmbeddings` long; an empty sequence gives a zero row.
    ///   - threads: worker threads (`Parallel`'s pool) for the matrix products, split by output
    ///     columns, and for the attention and row-wise steps when they are large enough; 0 = every CPU.
    /// - Returns: `tokenIds.count * dimension` floats, row-major, each row L2-normalised.
    /// - Throws: `.invalidArgument` for an id outside the vocabulary, a sequence that is too long or
    ///   a thread count outside 0...1024; `.outOfMemory` when scratch cannot be allocated.
    /// - Complexity: O(Σ n · (H² + H · I) + Σ n² · H) for sequence lengths n, hidden size H and
    ///   intermediate size I; scratch of (5H + I) floats per token of the largest batch.
    public func embed(tokenIds: [[Int32]], threads: Int) throws(ChorusError) -> [Float] {
        guard threads >= 0 && threads <= 1024 else { throw .invalidArgument("threads must be in 0...1024, got \(threads)") }
        let threads = threads > 0 ? threads : Parallel.cpuCount
        let vocab = Int32(clamping: config.vocabSize)
        for (s, ids) in tokenIds.enumerated() {
            if ids.count > config.maxPositionEmbeddings {
                throw .invalidArgument("sequence \(s) has \(ids.count) tokens; the model takes at most \(config.maxPositionEmbeddings)")
            }
            for (i, id) in ids.enumerated() where id < 0 || id >= vocab {
                throw .invalidArgument("sequence \(s), position \(i): the token id \(id) is outside the vocabulary 0..<\(vocab)")
            }
        }
        let h = dimension
        var output = [Float](repeating: 0, count: tokenIds.count * h)
        // Shortest first, ties in input order; empty sequences keep their zero rows.
        let order = tokenIds.indices.filter { !tokenIds[$0].isEmpty }.sorted {
            (tokenIds[$0].count, $0) < (tokenIds[$1].count, $1)
        }
        if order.isEmpty { return output }
        var batches: [[Int]] = []
        var current: [Int] = [], currentTokens = 0
        for index in order {
            let n = tokenIds[index].count
            if current.count == MiniLMModel.maxBatch || (currentTokens + n > MiniLMModel.maxBatchTokens && !current.isEmpty) {
                batches.append(current)
                current = []
                currentTokens = 0
            }
            current.append(index)
            currentTokens += n
        }
        batches.append(current)
        // Sized for the largest batch (in tokens), reused by all of them.
        var capacity = 0, longest = 0
        for b in batches {
            capacity = max(capacity, b.reduce(0) { $0 + tokenIds[$1].count })
            longest = max(longest, tokenIds[b.last!].count)
        }
        let scratch = try BertScratch(tokens: capacity, longest: longest, workers: threads, config: config)
        output.withUnsafeMutableBufferPointer { out in
            for b in batches {
                let rows = forward(b.map { tokenIds[$0] }, scratch: scratch, threads: threads)
                for (k, index) in b.enumerated() {
                    (out.baseAddress! + index * h).update(from: rows + k * h, count: h)
                }
            }
        }
        return output
    }

    /// Runs one batch of non-empty sequences (at most `scratch.tokens` tokens in all); returns
    /// `seqs.count` pooled, normalised rows (in `scratch.pooled`).
    func forward(_ seqs: [[Int32]], scratch: BertScratch, threads: Int) -> UnsafeMutablePointer<Float> {
        let c = config
        let h = c.hiddenSize, h3 = 3 * h, inter = c.intermediateSize, d = c.headSize, heads = c.numAttentionHeads
        let eps = c.layerNormEps
        let batch = seqs.count
        precondition(batch <= MiniLMModel.maxBatch && scratch.pooled.rows >= batch)
        // Sequence b owns rows first[b] ..< first[b] + lengths[b].
        var first: [Int] = [], lengths: [Int] = []
        var tokens = 0
        for s in seqs {
            first.append(tokens)
            lengths.append(s.count)
            tokens += s.count
        }
        precondition(tokens <= scratch.tokens)
        let w = weights

        // Embeddings: (word + token type 0) + position, then LayerNorm.
        let embeddingWorkers = min(threads, max(1, tokens / BertScratch.minRowsPerWorker))
        Parallel.forEachChunk(count: batch, threads: embeddingWorkers) { [first] _, range in
            for b in range {
                for (i, id) in seqs[b].enumerated() {
                    let x = scratch.hidden.row(first[b] + i)
                    let word = w.word + Int(id) * h, type = w.tokenType, pos = w.position + i * h
                    for k in 0..<h { x[k] = (word[k] + type[k]) + pos[k] }
                    BertKernels.layerNorm(x, gamma: w.normWeight, beta: w.normBias, h, eps: eps)
                }
            }
        }

        let hidden = scratch.hidden.base, qkv = scratch.qkv.base, context = scratch.context.base
        let intermediate = scratch.intermediate.base
        let scale = Float(d).squareRoot()
        var attentionWork = 0
        for n in lengths { attentionWork += n * n * h }
        let attentionWorkers = min(threads, max(1, attentionWork / BertScratch.minParallelAttentionWork))
        for layer in w.layers {
            // Q, K, V side by side in one [tokens, 3h] buffer, as one product.
            layer.qkv.apply(hidden, rows: tokens, ldx: h, into: qkv, ldy: h3, threads: threads)
            // One task per (sequence, head), handed out longest sequence first.
            Parallel.forEach(count: batch * heads, threads: attentionWorkers, grain: 1) { [first, lengths] worker, task in
                let (b, head) = (batch * heads - 1 - task).quotientAndRemainder(dividingBy: heads)
                let q = scratch.qkv.row(first[b]) + head * d
                BertKernels.attention(q: q, k: q + h, v: q + 2 * h, ld: h3, n: lengths[b], headSize: d, scale: scale,
                                      out: scratch.context.row(first[b]) + head * d, ldOut: h, scratch: scratch.attention.row(worker))
            }
            // Attention output dense (into the now free qkv buffer, as [tokens, h]), residual, LayerNorm.
            layer.attentionOutput.apply(context, rows: tokens, ldx: h, into: qkv, ldy: h, threads: threads)
            rowChunks(tokens, threads) { range in
                for row in range {
                    BertKernels.residualLayerNorm(scratch.qkv.base + row * h, residual: scratch.hidden.row(row),
                                                  gamma: layer.attentionNormWeight, beta: layer.attentionNormBias, h, eps: eps)
                }
            }
            // Feed-forward: dense + GELU, dense (into the free context buffer), residual, LayerNorm.
            layer.intermediate.apply(hidden, rows: tokens, ldx: h, into: intermediate, ldy: inter, threads: threads, gelu: true)
            layer.output.apply(intermediate, rows: tokens, ldx: inter, into: context, ldy: h, threads: threads)
            rowChunks(tokens, threads) { range in
                for row in range {
                    BertKernels.residualLayerNorm(scratch.context.row(row), residual: scratch.hidden.row(row),
                                                  gamma: layer.outputNormWeight, beta: layer.outputNormBias, h, eps: eps)
                }
            }
        }

        let pooled = scratch.pooled.base
        for b in 0..<batch {
            BertKernels.meanPoolNormalize(hidden + first[b] * h, rows: lengths[b], cols: h, ld: h, into: pooled + b * h)
        }
        return pooled
    }

    /// Splits `count` rows over up to `threads` workers, at least `BertScratch.minRowsPerWorker` each.
    private func rowChunks(_ count: Int, _ threads: Int, _ body: @escaping @Sendable (Range<Int>) -> Void) {
        let workers = min(threads, max(1, count / BertScratch.minRowsPerWorker))
        Parallel.forEachChunk(count: count, threads: workers) { _, range in body(range) }
    }
}

/// The weights a model runs on, read from the file by name, checked for dtype, shape and
/// finiteness: the embeddings and LayerNorm parameters straight into one allocation of their own,
/// each layer's dense weights into a scratch they are packed from (`Dense`), so loading holds
/// little more than what the model keeps.
struct BertWeights: @unchecked Sendable {
    struct Layer: @unchecked Sendable {
        /// Q, K and V as one product.
        let qkv, attentionOutput, intermediate, output: Dense
        let attentionNormWeight, attentionNormBias, outputNormWeight, outputNormBias: UnsafePointer<Float>
    }

    let word, position, tokenType, normWeight, normBias: UnsafePointer<Float>
    let layers: [Layer]
    /// Owns what the pointers above point into.
    private let kept: KeptFloats

    init(file: SafeTensors, config c: BertConfig) throws(ChorusError) {
        // Every dimension is at least 1 (BertConfig validates), so no tensor is empty.
        let h = c.hiddenSize, i = c.intermediateSize
        let kept = try KeptFloats(count: (c.vocabSize + c.maxPositionEmbeddings + c.typeVocabSize + 2 + 4 * c.numHiddenLayers) * h)
        func keep(_ name: String, _ shape: [Int]) throws(ChorusError) -> UnsafePointer<Float> {
            let at = kept.reserve(shape.reduce(1, *))
            try file.read(named: name, shape: shape, into: at)
            return UnsafePointer(at)
        }
        word = try keep("embeddings.word_embeddings.weight", [c.vocabSize, h])
        position = try keep("embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, h])
        tokenType = try keep("embeddings.token_type_embeddings.weight", [c.typeVocabSize, h])
        normWeight = try keep("embeddings.LayerNorm.weight", [h])
        normBias = try keep("embeddings.LayerNorm.bias", [h])
        var layers: [Layer] = []
        for n in 0..<c.numHiddenLayers {
            let p = "encoder.layer.\(n)."
            // One layer's dense weights and biases, packed and then let go.
            let scratch = try KeptFloats(count: 4 * h * h + 2 * h * i + 6 * h + i)
            func t(_ name: String, _ shape: [Int]) throws(ChorusError) -> UnsafePointer<Float> {
                let at = scratch.reserve(shape.reduce(1, *))
                try file.read(named: name, shape: shape, into: at)
                return UnsafePointer(at)
            }
            layers.append(Layer(
                qkv: try Dense(inDim: h, [
                    (try t(p + "attention.self.query.weight", [h, h]), try t(p + "attention.self.query.bias", [h]), h),
                    (try t(p + "attention.self.key.weight", [h, h]), try t(p + "attention.self.key.bias", [h]), h),
                    (try t(p + "attention.self.value.weight", [h, h]), try t(p + "attention.self.value.bias", [h]), h)]),
                attentionOutput: try Dense(inDim: h, [(try t(p + "attention.output.dense.weight", [h, h]), try t(p + "attention.output.dense.bias", [h]), h)]),
                intermediate: try Dense(inDim: h, [(try t(p + "intermediate.dense.weight", [i, h]), try t(p + "intermediate.dense.bias", [i]), i)]),
                output: try Dense(inDim: i, [(try t(p + "output.dense.weight", [h, i]), try t(p + "output.dense.bias", [h]), h)]),
                attentionNormWeight: try keep(p + "attention.output.LayerNorm.weight", [h]),
                attentionNormBias: try keep(p + "attention.output.LayerNorm.bias", [h]),
                outputNormWeight: try keep(p + "output.LayerNorm.weight", [h]),
                outputNormBias: try keep(p + "output.LayerNorm.bias", [h])))
        }
        self.layers = layers
        self.kept = kept
    }
}

/// One allocation of floats handed out front to back, freed with its owner.
private final class KeptFloats {
    private let base: UnsafeMutablePointer<Float>
    private let capacity: Int
    private var used = 0

    init(count: Int) throws(ChorusError) {
        capacity = count
        base = try Allocator.allocate(bytes: count * MemoryLayout<Float>.stride, zeroed: false).assumingMemoryBound(to: Float.self)
    }

    deinit { Allocator.deallocate(UnsafeMutableRawPointer(base)) }

    /// The next `count` floats.
    func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        precondition(used + count <= capacity, "KeptFloats sized too small")
        let at = base + used
        used += count
        return at
    }
}

/// Per-call scratch, sized for the largest batch in tokens and reused across batches and layers.
/// Not zeroed: every slot read is written first.
final class BertScratch: @unchecked Sendable {
    /// Row-wise steps go parallel only with at least this many rows per worker (a thread start
    /// costs about as much as a few rows of GELU).
    static let minRowsPerWorker = 16
    /// Attention goes parallel only above this many multiply-adds (Σ n² h) per worker.
    static let minParallelAttentionWork = 100_000

    let tokens: Int
    /// [tokens, h]: the hidden states, updated in place layer by layer.
    let hidden: FloatMatrix
    /// [tokens, 3h]: Q, K, V side by side; then the attention output dense, as [tokens, h].
    let qkv: FloatMatrix
    /// [tokens, h]: the attention context; then the feed-forward output.
    let context: FloatMatrix
    /// [tokens, intermediate].
    let intermediate: FloatMatrix
    /// [workers, longest * (2 * headSize + 1)]: each worker's attention scratch (one head's keys,
    /// transposed values and scores).
    let attention: FloatMatrix
    /// [maxBatch, h]: the pooled, normalised embeddings of the current batch.
    let pooled: FloatMatrix

    init(tokens: Int, longest: Int, workers: Int, config c: BertConfig) throws(ChorusError) {
        self.tokens = tokens
        hidden = try FloatMatrix(rows: tokens, cols: c.hiddenSize, zeroed: false)
        qkv = try FloatMatrix(rows: tokens, cols: 3 * c.hiddenSize, zeroed: false)
        context = try FloatMatrix(rows: tokens, cols: c.hiddenSize, zeroed: false)
        intermediate = try FloatMatrix(rows: tokens, cols: c.intermediateSize, zeroed: false)
        attention = try FloatMatrix(rows: workers, cols: longest * (2 * c.headSize + 1), zeroed: false)
        pooled = try FloatMatrix(rows: MiniLMModel.maxBatch, cols: c.hiddenSize, zeroed: false)
    }
}
