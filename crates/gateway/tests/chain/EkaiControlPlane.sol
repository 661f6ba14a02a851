// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// Test implementation of the control-plane interface the gateway reads (Sapphire mode). On
/// Sapphire the real contract lets only the ROFL app read ciphertexts and log receipts (a check that
/// needs Sapphire's subcall precompile); a local node has none, so here a configured `gateway`
/// address is the one allowed to log receipts.
contract EkaiControlPlane {
    struct Secret {
        bytes ciphertext;
        uint64 version;
        uint64 roflKeyVersion;
        bool exists;
    }

    address public admin;
    address public gateway;
    bool public paused;
    bytes public roflKey;
    uint64 public roflKeyVersion;
    uint256 public receiptCount;

    mapping(address => mapping(bytes32 => Secret)) private secrets;
    mapping(address => mapping(address => bool)) private delegates;
    mapping(address => mapping(bytes32 => mapping(bytes32 => bool))) private models;
    mapping(bytes32 => bool) public receiptLogged;

    event ReceiptLogged(
        bytes32 indexed requestHash,
        address indexed owner,
        address indexed delegate,
        bytes32 providerId,
        bytes32 modelId,
        uint32 promptTokens,
        uint32 completionTokens
    );

    constructor(address gateway_) {
        admin = msg.sender;
        gateway = gateway_;
    }

    modifier onlyAdmin() {
        require(msg.sender == admin, "not admin");
        _;
    }

    function setPaused(bool p) external onlyAdmin {
        paused = p;
    }

    function setRoflKey(bytes calldata key) external onlyAdmin {
        require(key.length == 32, "X25519 key is 32 bytes");
        roflKey = key;
        roflKeyVersion += 1;
    }

    function setSecret(bytes32 providerId, bytes calldata ciphertext) external {
        Secret storage s = secrets[msg.sender][providerId];
        s.ciphertext = ciphertext;
        s.version += 1;
        s.roflKeyVersion = roflKeyVersion;
        s.exists = true;
    }

    function setDelegate(address delegate, bool permitted) external {
        delegates[msg.sender][delegate] = permitted;
    }

    function setModelPermitted(bytes32 providerId, bytes32 modelId, bool permitted) external {
        models[msg.sender][providerId][modelId] = permitted;
    }

    function isPaused() external view returns (bool) {
        return paused;
    }

    function isDelegatePermitted(address owner, address delegate) external view returns (bool) {
        return owner == delegate || delegates[owner][delegate];
    }

    function isModelPermitted(address owner, bytes32 providerId, bytes32 modelId) external view returns (bool) {
        return models[owner][providerId][modelId];
    }

    function getSecretCiphertext(address owner, bytes32 providerId)
        external
        view
        returns (bytes memory ciphertext, uint64 secretVersion, bool exists, uint64 keyVersion)
    {
        Secret storage s = secrets[owner][providerId];
        return (s.ciphertext, s.version, s.exists, s.roflKeyVersion);
    }

    function logReceipt(
        bytes32 requestHash,
        address owner,
        address delegate,
        bytes32 providerId,
        bytes32 modelId,
        uint32 promptTokens,
        uint32 completionTokens
    ) external {
        require(msg.sender == gateway, "not the gateway");
        require(!receiptLogged[requestHash], "receipt already logged");
        receiptLogged[requestHash] = true;
        receiptCount += 1;
        emit ReceiptLogged(requestHash, owner, delegate, providerId, modelId, promptTokens, completionTokens);
    }

    /// The ids as Solidity computes them, to check the gateway's encoding against.
    function idOf(string calldata text) external pure returns (bytes32) {
        return keccak256(bytes(text));
    }

    function requestHashOf(address owner, address delegate, bytes32 providerId, bytes32 modelId, uint64 timestampMs)
        external
        pure
        returns (bytes32)
    {
        return keccak256(abi.encodePacked(owner, delegate, providerId, modelId, timestampMs));
    }
}
