// Defines the ETL host functions as read-only globals. Evaluated once per QuickJS context; the
// `native` functions it receives stay private to this closure. Returns `defineLoadTo(name)`,
// which the runtime calls for each `loadTo<Name>` identifier the script references.
// With `undefinedAsNull` (SQL ETL), a loaded object's own properties that are `undefined` are
// loaded as `null` — a NULL column, as RavenDB writes them — instead of being dropped.
// With `resultsUnused` (the parse shows every `loadTo…` call is a statement of its own, so its
// value is dropped), the calls return one shared, frozen result instead of a fresh object with
// a closure each: that allocation was about 12% of a SQL ETL script's cost.
// With `patchMode` (a patch script, not ETL), `put(id, doc)` and `del(id)` are defined too.
(function (native, undefinedAsNull, resultsUnused, patchMode) {
    'use strict';
    var global = globalThis;
    var defineProperty = Object.defineProperty;
    var stringify = JSON.stringify;
    var loadTo = native.loadTo;
    var addAttachment = native.addAttachment;
    var hasAttachment = native.hasAttachment;

    var hasOwn = Object.prototype.hasOwnProperty;
    var isArray = Array.isArray;
    var objectValues = Object.values;
    var slice = Array.prototype.slice;

    // The arguments after the object (Queue ETL's routing key and CloudEvents attributes), as
    // JSON text, or undefined when there are none.
    function extraArguments(args, from) {
        return args.length > from ? stringify(slice.call(args, from)) : undefined;
    }

    function undefinedToNull(obj) {
        if (!undefinedAsNull || obj === null || typeof obj !== 'object' || isArray(obj)
            || typeof obj.toJSON === 'function') {
            return obj;
        }
        // Most objects have no undefined member: a native scan, no copy.
        if (objectValues(obj).indexOf(undefined) < 0) {
            return obj;
        }
        var copy = {};
        for (var key in obj) {
            if (hasOwn.call(obj, key)) {
                var value = obj[key];
                copy[key] = value === undefined ? null : value;
            }
        }
        return copy;
    }

    function define(name, value) {
        defineProperty(global, name, {
            value: value,
            writable: false,
            enumerable: false,
            configurable: false,
        });
    }

    var sharedResult = Object.freeze({
        addAttachment: function () {
            throw new TypeError('addAttachment: call it on the value loadTo returned');
        },
    });

    function loadResult(index) {
        if (resultsUnused) {
            return sharedResult;
        }
        return {
            addAttachment: function (nameOrReference, reference) {
                if (arguments.length < 2) {
                    addAttachment(index, null, nameOrReference);
                } else {
                    addAttachment(index, nameOrReference, reference);
                }
            },
        };
    }

    function getMetadata(doc) {
        if (doc === null || (typeof doc !== 'object' && typeof doc !== 'function')) {
            return null;
        }
        var metadata = doc['@metadata'];
        return metadata === undefined ? null : metadata;
    }

    define('loadTo', function (target, obj) {
        if (typeof target !== 'string') {
            throw new TypeError('loadTo: the target name must be a string');
        }
        return loadResult(loadTo(target, undefinedToNull(obj), extraArguments(arguments, 2)));
    });
    define('getMetadata', getMetadata);
    define('id', function (doc) {
        var metadata = getMetadata(doc);
        if (metadata === null || typeof metadata !== 'object') {
            return null;
        }
        var id = metadata['@id'];
        return id === undefined ? null : id;
    });
    define('load', function (id) {
        if (id === null || id === undefined) {
            return null;
        }
        return native.load(String(id));
    });
    if (patchMode) {
        define('put', function (id, doc) {
            if (doc === null || typeof doc !== 'object' || isArray(doc)) {
                throw new TypeError('put: the document must be an object');
            }
            return native.put(id === null || id === undefined ? '' : String(id), stringify(doc));
        });
        define('del', function (id) {
            if (id === null || id === undefined) {
                throw new TypeError('del: the document id is required');
            }
            return native.del(String(id));
        });
    }
    define('getAttachments', native.getAttachments);
    define('hasAttachment', function (name) {
        return hasAttachment(String(name));
    });
    define('loadAttachment', function (name) {
        name = String(name);
        return hasAttachment(name) ? '$attachment/' + name : null;
    });
    define('output', function () {
        var line = '';
        for (var i = 0; i < arguments.length; i++) {
            var value = arguments[i];
            var text = value !== null && typeof value === 'object' ? stringify(value) : String(value);
            line += (i === 0 ? '' : ' ') + text;
        }
        native.output(line);
    });
    define('varchar', function (value, size) {
        return { Type: 'AnsiString', Value: value, Size: size === undefined ? 50 : size };
    });
    define('nvarchar', function (value, size) {
        return { Type: 'String', Value: value, Size: size === undefined ? 50 : size };
    });

    return function defineLoadTo(name) {
        var target = name.slice('loadTo'.length);
        define(name, function (obj) {
            return loadResult(loadTo(target, undefinedToNull(obj), extraArguments(arguments, 1)));
        });
    };
})
